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

// Check reports what is wrong with a DSN that Open or Read would refuse
// before connecting: a malformed URL or table name, an unknown sqlite:
// parameter, a libpq keyword=value string. Its message holds no password.
func Check(dsn string) error {
	_, err := parseDSN(dsn)
	return err
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
		for k, v := range q {
			if k != "table" {
				return t, fmt.Errorf("unknown parameter %q (sqlite: takes only ?table=NAME)", k)
			}
			if len(v) > 1 {
				return t, errors.New("table= is given more than once")
			}
		}
		if path == "" {
			return t, errors.New("sqlite: wants a file, as in sqlite:servers.db")
		}
		t.sqlite = path
		t.table, err = checkTable(q.Get("table"))
		return t, err
	}
	if !strings.Contains(dsn, "://") {
		return t, errors.New("want a URL: postgres://USER:PASSWORD@HOST:PORT/DATABASE (keyword=value connection strings are not read)")
	}
	norm, secret, ambiguous := escapeUserinfo(dsn)
	if ambiguous >= 0 {
		return t, errors.New("an '@' after a '?' or '#' ends either the password or a query value, and the URL does not say which: percent-encode that '@' as %40 (and any '?', '#' or '/' in the password)")
	}
	t.secret = secret
	base, query, _ := strings.Cut(norm, "?")
	var keep []string
	for _, param := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(param, "=")
		if k != "table" {
			if param != "" {
				keep = append(keep, param)
			}
			continue
		}
		if t.table != "" {
			return t, errors.New("table= is given more than once")
		}
		name, err := url.QueryUnescape(v)
		if err != nil {
			return t, fmt.Errorf("table=%s: %v", v, err)
		}
		if t.table, err = checkTable(name); err != nil {
			return t, err
		}
	}
	t.postgres = base
	if len(keep) > 0 {
		t.postgres += "?" + strings.Join(keep, "&")
	}
	return t, nil
}

// escapeUserinfo returns a PostgreSQL URL that pgx reads as the user meant,
// and the password in it. A URL's authority ends at its first '/', '?' or
// '#', and its userinfo at the last '@' in it; users paste passwords as
// they are, and one with a '/', '?' or '#' ends the authority too soon. So
// when the authority holds no '@', an '@' further on that is followed by a
// host (and a path, query or nothing) ends the userinfo, if what comes
// before it is USER:PASSWORD with a plain user name: the password is then
// percent-encoded (what was already, as %40, is kept). Anything else (an '@' in a
// query value, say) is left for pgx as it is.
func escapeUserinfo(dsn string) (norm, password string, ambiguous int) {
	head, rest, _ := strings.Cut(dsn, "://")
	head += "://"
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 && len(authority) < len(rest) {
		// A password with an '@' and then a '?', '#' or '/' ("p@ss?w"):
		// the last '@' that a host and a port or path follow ends it.
		// If what precedes that '@' reads as a query too, the URL reads
		// two ways, and is refused.
		for i := len(rest) - 1; i > len(authority); i-- {
			if rest[i] == '@' && hostThenPortOrPath.MatchString(rest[i+1:]) {
				if strings.ContainsAny(rest[:i], "=&") {
					return dsn, "", len(head) + i
				}
				user, pass, _ := strings.Cut(rest[:i], ":")
				user, pass = unescape(user), unescape(pass)
				return head + url.UserPassword(user, pass).String() + "@" + rest[i+1:], pass, -1
			}
		}
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		// Standard, but pgx cuts at the first '@': escape any other.
		user, pass, hasPass := strings.Cut(authority[:at], ":")
		user, pass = unescape(user), unescape(pass)
		if !hasPass {
			// A lone user name may be a token (shown as ***): a long one
			// is scrubbed from the driver's errors too.
			secret := ""
			if len(user) >= 12 {
				secret = user
			}
			return head + url.User(user).String() + rest[at:], secret, -1
		}
		return head + url.UserPassword(user, pass).String() + rest[at:], pass, -1
	}
	for i := len(authority); i < len(rest); i++ {
		if rest[i] != '@' || !hostThenPath.MatchString(rest[i+1:]) {
			continue
		}
		user, pass, ok := strings.Cut(rest[:i], ":")
		if !ok || user == "" || strings.ContainsAny(user, "/?#@=&") {
			break
		}
		if q := strings.IndexAny(pass, "?#"); q >= 0 && strings.ContainsAny(pass[q:], "=&") {
			// "h:5432?application_name=me@corp:1/x": a query, or a
			// password? Either way, not to be guessed.
			return dsn, "", len(head) + i
		}
		user, pass = unescape(user), unescape(pass)
		return head + url.UserPassword(user, pass).String() + "@" + rest[i+1:], pass, -1
	}
	return dsn, "", -1
}

var hostThenPortOrPath = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]+)(:[0-9]+([/?#]|$)|/)`)

var hostThenPath = regexp.MustCompile(`^(\[[0-9A-Fa-f:.%a-z]+\]|[A-Za-z0-9._~%-]*)(:[0-9]*)?(,(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%-]*)(:[0-9]*)?)*([/?#]|$)`)

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
var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,49}$`)

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
	case strings.HasPrefix(t, "sqlite_") || strings.HasPrefix(t, "pg_"):
		return "", fmt.Errorf("table %q: names starting sqlite_ or pg_ are the database's own; choose another", table)
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
