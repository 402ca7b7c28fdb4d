package sqlstore

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// target is a parsed --out or dump DSN.
type target struct {
	sqlite   string // the SQLite file; "" for PostgreSQL
	postgres string // the PostgreSQL URL for pgx, user name and password escaped
	table    string // "" if not given
	secret   string // the password, to scrub from the driver's errors
}

// parseDSN reads sqlite:PATH[?table=T] or postgres://…[?table=T&…].
func parseDSN(dsn string) (target, error) {
	var t target
	if rest, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		path, query, _ := strings.Cut(rest, "?")
		q, err := url.ParseQuery(query)
		if err != nil {
			return t, fmt.Errorf("%v", err)
		}
		for k := range q {
			if k != "table" {
				return t, fmt.Errorf("unknown parameter %q (sqlite: takes only ?table=NAME)", k)
			}
		}
		if path == "" {
			return t, errors.New("sqlite: wants a file, as in sqlite:servers.db")
		}
		t.sqlite = path
		t.table, err = checkTable(q.Get("table"))
		return t, err
	}
	norm, secret := escapeUserinfo(dsn)
	t.secret = secret
	u, err := url.Parse(norm)
	if err != nil {
		return t, errors.New(scrub(err.Error(), secret))
	}
	q := u.Query()
	if t.table, err = checkTable(q.Get("table")); err != nil {
		return t, err
	}
	q.Del("table")
	u.RawQuery = q.Encode()
	t.postgres = u.String()
	return t, nil
}

// escapeUserinfo percent-encodes the user name and password of a URL, which
// users paste as they are: a '?', '#', '/' or '@' in a password would
// otherwise cut the URL short, and the driver would quote the rest of it in
// its error. The userinfo ends at the last '@' followed by a host (or by
// the path, for a socket given as ?host=).
func escapeUserinfo(dsn string) (norm, password string) {
	head, after, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn, ""
	}
	at := -1
	for i := len(after) - 1; i >= 0; i-- {
		if after[i] == '@' && hostThenPath.MatchString(after[i+1:]) {
			at = i
			break
		}
	}
	if at < 0 {
		return dsn, ""
	}
	user, pass, hasPass := strings.Cut(after[:at], ":")
	user, pass = unescape(user), unescape(pass)
	info := url.User(user)
	if hasPass {
		info = url.UserPassword(user, pass)
	}
	return head + "://" + info.String() + "@" + after[at+1:], pass
}

var hostThenPath = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]*)(:[0-9]*)?(,[^/?#@]*)?([/?#]|$)`)

// unescape decodes what was already percent-encoded, and keeps the rest.
func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// scrub hides a password in a message, in the forms it may take there.
func scrub(msg, secret string) string {
	if len(secret) < 2 {
		return msg
	}
	for _, form := range []string{secret, url.PathEscape(secret), url.QueryEscape(secret), url.UserPassword("", secret).String()[1:]} {
		if len(form) >= 2 {
			msg = strings.ReplaceAll(msg, form, "***")
		}
	}
	return msg
}

// A scrubbed error is a driver's error with the password taken out of its
// text, and the error itself kept for errors.As.
type scrubbed struct {
	msg string
	err error
}

func (e scrubbed) Error() string { return e.msg }
func (e scrubbed) Unwrap() error { return e.err }

func scrubErr(err error, secret string) error {
	if err == nil || secret == "" {
		return err
	}
	if msg := scrub(err.Error(), secret); msg != err.Error() {
		return scrubbed{msg, err}
	}
	return err
}

// tableName matches the identifiers a Store accepts as table names: lower
// case, so that PostgreSQL's unquoted names (folded to lower case) and
// SQLite's (which ignore case) find the same table.
var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,50}$`)

// checkTable folds a table name to lower case and refuses the names the
// Store uses itself.
func checkTable(table string) (string, error) {
	if table == "" {
		return "", nil
	}
	t := strings.ToLower(table)
	switch {
	case !tableName.MatchString(t):
		return "", fmt.Errorf("table %q: want letters, digits and _ (at most 50), not starting with a digit", table)
	case reserved(t):
		return "", fmt.Errorf("table %q: the name is lockstep's own (it keeps lockstep_meta, and each table's tombstones in TABLE_tombstones); choose another", table)
	}
	return t, nil
}

func reserved(t string) bool {
	return strings.HasPrefix(t, "lockstep_") || strings.HasPrefix(t, "sqlite_") || strings.HasPrefix(t, "pg_") || strings.HasSuffix(t, "_tombstones")
}

// defaultTable names the table after the endpoint's last path segment that
// makes a name ("/v1/servers/?since={since}" gives servers).
func defaultTable(endpoint string) string {
	if u, err := url.Parse(strings.ReplaceAll(endpoint, "{since}", "")); err == nil {
		segs := strings.Split(strings.Trim(u.Path, "/"), "/")
		for i := len(segs) - 1; i >= 0; i-- {
			t := strings.Trim(nonName.ReplaceAllString(strings.ToLower(segs[i]), "_"), "_")
			if tableName.MatchString(t) && !reserved(t) {
				return t
			}
		}
	}
	return "records"
}

var nonName = regexp.MustCompile(`[^a-z0-9_]+`)
