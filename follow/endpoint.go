package follow

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// endpoint turns a configured URL into requests for a cursor. It holds the
// credentials apart from the URL so that nothing derived from the URL for
// display can carry them.
type endpoint struct {
	raw        string // the URL as given, credentials removed
	sinceParam string
	user, pass string
	hasAuth    bool
	header     http.Header
	redact     []string // names whose values are never shown, beyond SecretName's
	userinfo   string   // the credentials as shown: "user:***", "***" or ""
	display    string   // raw, redacted, with userinfo
}

func newEndpoint(rawURL, sinceParam, user string, header http.Header, redact []string) (*endpoint, error) {
	e := &endpoint{sinceParam: sinceParam, header: header.Clone(), redact: redact}
	if e.header == nil {
		e.header = http.Header{}
	}
	// The userinfo is found and removed by its text before anything parses
	// the URL: a parse error quotes what it stumbled on, which may be the
	// password.
	head, userinfo, rest := splitUserinfo(rawURL)
	invalid := func(why string) error {
		return fmt.Errorf("invalid URL %s: %s", Redact(rawURL, redact...), why)
	}
	if strings.ContainsAny(userinfo, "/?#") {
		return nil, invalid("a user name or password holds '/', '?' or '#' (or the path an '@' in its first segment): percent-encode them (%2F %3F %23 %40)")
	}
	u, err := url.Parse(strings.ReplaceAll(head+rest, "{since}", "0"))
	if err != nil {
		var esc url.EscapeError
		switch {
		case strings.Contains(rest, "@"):
			// The text before this @ may be a password with a character
			// that ended the host early: quote nothing of it.
			return nil, invalid("it does not parse; percent-encode any '@', ':', '/', '?' or '#' in a user name or password")
		case errors.As(err, &esc):
			return nil, invalid("a '%' is not followed by two hex digits")
		}
		return nil, invalid(unwrapURLError(err).Error())
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, invalid("scheme must be http or https")
	}
	if u.Host == "" {
		return nil, invalid("no host")
	}
	if userinfo != "" {
		name, pass, _ := strings.Cut(userinfo, ":")
		if e.user, err = url.PathUnescape(name); err == nil {
			e.pass, err = url.PathUnescape(pass)
		}
		if err != nil {
			return nil, invalid("a '%' in the user name or password is not followed by two hex digits")
		}
		e.hasAuth = true
		e.userinfo = maskUserinfo(userinfo)
	}
	if user != "" {
		name, pass, ok := strings.Cut(user, ":")
		e.user, e.pass, e.hasAuth = name, pass, true
		e.userinfo = "***"
		if ok {
			e.userinfo = url.User(name).String() + ":***"
		}
	}
	e.raw = head + rest
	e.display = e.show(e.raw)
	return e, nil
}

// show returns a URL of this endpoint for display: its credentials as
// userinfo, redacted, and secret query values hidden.
func (e *endpoint) show(u string) string {
	head, _, rest := splitUserinfo(u)
	return joinUserinfo(head, e.userinfo, redactParams(rest, e.redact))
}

// scrub hides in text from the endpoint (an error page, a bad record's
// snippet) every credential the request carried: an endpoint that echoes
// its request must not put them in lockstep's output.
func (e *endpoint) scrub(text string) string {
	var secrets []string
	if e.hasAuth {
		secrets = append(secrets, e.pass, base64.StdEncoding.EncodeToString([]byte(e.user+":"+e.pass)))
		if e.pass == "" {
			secrets = append(secrets, e.user)
		}
	}
	for name, values := range e.header {
		if SecretName(name, e.redact...) {
			for _, v := range values {
				secrets = append(secrets, v)
				if _, token, ok := strings.Cut(v, " "); ok {
					secrets = append(secrets, token)
				}
			}
		}
	}
	if _, query, ok := strings.Cut(e.raw, "?"); ok {
		for _, p := range strings.Split(query, "&") {
			name, value, _ := strings.Cut(p, "=")
			if n, err := url.QueryUnescape(name); err == nil && SecretName(n, e.redact...) {
				secrets = append(secrets, value)
				if v, err := url.QueryUnescape(value); err == nil {
					secrets = append(secrets, v)
				}
			}
		}
	}
	for _, s := range secrets {
		// Shorter than 4 bytes, a "secret" would mask ordinary text.
		if len(s) >= 4 {
			text = strings.ReplaceAll(text, s, "***")
		}
	}
	return text
}

// url builds the request URL for a cursor (PROTOCOL 2).
func (e *endpoint) url(cursor Order) string {
	if i := strings.Index(e.raw, "{since}"); i >= 0 {
		esc := cursor.urlPath()
		if q := strings.IndexByte(e.raw, '?'); q >= 0 && q < i {
			esc = cursor.urlQuery()
		}
		return strings.ReplaceAll(e.raw, "{since}", esc)
	}
	base, _, _ := strings.Cut(e.raw, "#")
	path, query, hasQuery := strings.Cut(base, "?")
	if e.sinceParam != "" {
		var kept []string
		if hasQuery && query != "" {
			for _, p := range strings.Split(query, "&") {
				name, _, _ := strings.Cut(p, "=")
				if n, err := url.QueryUnescape(name); err == nil && n == e.sinceParam {
					continue
				}
				kept = append(kept, p)
			}
		}
		kept = append(kept, url.QueryEscape(e.sinceParam)+"="+cursor.urlQuery())
		return path + "?" + strings.Join(kept, "&")
	}
	if !strings.HasSuffix(path, "/") {
		path += "/"
	}
	path += cursor.urlPath()
	if hasQuery {
		path += "?" + query
	}
	return path
}

func (e *endpoint) request(ctx context.Context, cursor Order) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url(cursor), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", e.display, unwrapURLError(err))
	}
	e.setHeaders(req, true)
	return req, nil
}

// setHeaders sets the headers of a request: the user's headers and the
// credentials only when trusted (the request goes to the endpoint's own
// origin), and lockstep's own always.
func (e *endpoint) setHeaders(req *http.Request, trusted bool) {
	if trusted {
		for k, v := range e.header {
			req.Header[k] = v
		}
		if e.hasAuth {
			req.SetBasicAuth(e.user, e.pass)
		}
	}
	req.Header.Set("Accept", "application/x-ndjson, application/json;q=0.9, */*;q=0.1")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "lockstep")
	}
}

// Redact returns a URL for display. The userinfo becomes "user:***", or
// "***" when it is a lone user name (often a token), and the value of every
// query or fragment parameter whose name SecretName reports (with extra) as
// secret becomes ***. It works on the text, without parsing the URL, so
// that a URL that does not parse is redacted too: a password holding an
// unescaped '/', '?' or '#' ends the host early, and the userinfo is then
// taken to run to an '@' in the first segment after it, or, if the URL
// does not parse, to its last '@'.
func Redact(raw string, extra ...string) string {
	if !strings.Contains(raw, "://") {
		// No scheme, so no authority to a URL parser; "user:pw@host/x"
		// still holds a password.
		end := strings.IndexAny(raw, "/?#")
		if end < 0 {
			end = len(raw)
		}
		if at := strings.LastIndex(raw[:end], "@"); at > 0 {
			return maskUserinfo(raw[:at]) + "@" + redactParams(raw[at+1:], extra)
		}
	}
	head, userinfo, rest := splitUserinfo(raw)
	if userinfo == "" && strings.Contains(rest, "@") {
		if _, err := url.Parse(strings.ReplaceAll(raw, "{since}", "0")); err != nil {
			at := strings.LastIndex(rest, "@")
			userinfo, rest = rest[:at], rest[at+1:]
		}
	}
	return joinUserinfo(head, maskUserinfo(userinfo), redactParams(rest, extra))
}

// splitUserinfo cuts raw into what precedes the authority ("https://"),
// the userinfo (without its '@'; "" if none) and the rest (host, path,
// query, fragment). The userinfo ends at the last '@' of the authority, or
// at an '@' inside the first segment after it (but not at its start, and
// not in a query value): a password or token with an unescaped '/', '?' or
// '#' ends the authority too soon, and must still be found.
func splitUserinfo(raw string) (head, userinfo, rest string) {
	i := strings.Index(raw, "://")
	if i < 0 {
		return "", "", raw
	}
	head, after := raw[:i+3], raw[i+3:]
	at := -1
	end := len(after)
	if j := strings.IndexAny(after, "/?#"); j >= 0 {
		end = j
	}
	if j := strings.LastIndex(after[:end], "@"); j >= 0 {
		at = j
	}
	if end < len(after) && after[end] != '/' {
		// A '?' or '#' in a password ends the authority early too: the
		// last '@' after it that a host follows ends the userinfo. (Were
		// it a query value's, the URL reads two ways: the userinfo then
		// holds a '?' or '#', and the URL is refused, hidden.)
		for j := len(after) - 1; j > end; j-- {
			if after[j] == '@' && hostLike(after[j+1:]) {
				at = j
				break
			}
		}
	}
	if end < len(after) && after[end] == '/' {
		// Base64 passwords hold '/', '=' and '+': the segment runs to the
		// next '/', '?' or '#', and what follows its '@' must be a host.
		seg := after[end+1:]
		if j := strings.IndexAny(seg, "/?#"); j >= 0 {
			seg = seg[:j]
		}
		if j := strings.LastIndex(seg, "@"); j > 0 && hostLike(after[end+1+j+1:]) {
			at = end + 1 + j
		}
	}
	if at < 0 {
		return head, "", after
	}
	return head, after[:at], after[at+1:]
}

// maskUserinfo shows a userinfo as "user:***", or "***" without a
// password: a lone user name is as often a token.
func maskUserinfo(userinfo string) string {
	if userinfo == "" {
		return ""
	}
	if name, _, ok := strings.Cut(userinfo, ":"); ok {
		return name + ":***"
	}
	return "***"
}

func joinUserinfo(head, userinfo, rest string) string {
	if userinfo == "" {
		return head + rest
	}
	return head + userinfo + "@" + rest
}

// redactParams hides the values of secret parameters in the query and the
// fragment of rest (a fragment can hold an OAuth access_token).
func redactParams(rest string, extra []string) string {
	rest, frag, hasFrag := strings.Cut(rest, "#")
	path, query, hasQuery := strings.Cut(rest, "?")
	if hasQuery {
		path += "?" + redactQuery(query, extra)
	}
	if hasFrag {
		path += "#" + redactQuery(frag, extra)
	}
	return path
}

func redactQuery(q string, extra []string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		name, _, ok := strings.Cut(p, "=")
		n, err := url.QueryUnescape(name)
		if err != nil {
			n = name
		}
		if ok && SecretName(n, extra...) {
			parts[i] = name + "=***"
		}
	}
	return strings.Join(parts, "&")
}

// secretSubstrings mark a header or parameter name as secret wherever they
// appear in it, in any case: "X-Api-Key", "refresh_token", "client_secret",
// "X-Amz-Signature", "X-Goog-Signature", "db_pwd".
var secretSubstrings = []string{
	"auth", "token", "secret", "password", "passwd", "pwd", "key", "cookie",
	"session", "signature", "credential", "jwt", "bearer",
}

// secretWords mark a name as secret only as whole words, between the ends
// of the name and '-', '_' or '.' ("pass", "X-Pass", "db_pass", "sig",
// "access_code"): inside a longer word they mean something else
// ("passage", "design", "zipcode").
var secretWords = []string{"pass", "sig", "access-code"}

// SecretName reports whether a header or query parameter name looks like it
// carries a credential, so that its value is never shown: it holds one of
// secretSubstrings, one of secretWords as whole words, or it is one of
// extra (names added with --redact, compared whole). Case does not matter,
// and '-', '_' and '.' are alike.
func SecretName(name string, extra ...string) bool {
	n := normalName(name)
	for _, w := range secretSubstrings {
		if strings.Contains(n, w) {
			return true
		}
	}
	for _, w := range secretWords {
		if strings.Contains("-"+n+"-", "-"+w+"-") {
			return true
		}
	}
	for _, x := range extra {
		if n == normalName(x) {
			return true
		}
	}
	return false
}

var nameSeparators = strings.NewReplacer("_", "-", ".", "-")

func normalName(name string) string {
	return nameSeparators.Replace(strings.ToLower(strings.TrimSpace(name)))
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// TLSOptions configure certificate checks.
type TLSOptions struct {
	CACert   string // PEM file of extra CAs to trust
	Insecure bool   // skip verification entirely
}

// NewClient returns an HTTP client for a Follower: TLS verification with
// optional extra CAs, TCP keepalive and transparent gzip. It sets no
// overall timeout: an endless response is healthy, and stalls are the
// Follower's to detect. The Follower adds its redirect rules to whatever
// client it is given.
func NewClient(opts TLSOptions) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 15 * time.Second}).DialContext
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: opts.Insecure}
	// A backlog is megabytes: read it in large pieces, not net/http's 4 KiB.
	tr.ReadBufferSize = 256 << 10
	if opts.CACert != "" {
		pem, err := os.ReadFile(opts.CACert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate found", opts.CACert)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr}, nil
}

const maxRedirects = 10

// A RedirectError is a redirect that lockstep refuses to follow (PROTOCOL
// 3): from https to http, to a scheme other than http and https, to a
// Location that does not parse, or one more than 10. Retrying cannot help,
// so a Follower stops on it.
type RedirectError struct {
	Location string // redacted
	Reason   string
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("refused redirect to %s: %s", e.Location, e.Reason)
}

// guard returns a copy of c that follows redirects by PROTOCOL 3, whatever
// c's own CheckRedirect: no Referer ever, the user's headers and the
// credentials only at the endpoint's origin, never from https to http.
func (e *endpoint) guard(c *http.Client) *http.Client {
	g := *c
	base := g.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	g.Transport = &locationCheck{base: base, e: e}
	g.CheckRedirect = e.checkRedirect
	return &g
}

func (e *endpoint) checkRedirect(req *http.Request, via []*http.Request) error {
	refuse := func(reason string) error {
		return &RedirectError{Location: Redact(req.URL.String(), e.redact...), Reason: reason}
	}
	switch {
	case len(via) >= maxRedirects:
		return refuse(fmt.Sprintf("more than %d redirects", maxRedirects))
	case req.URL.Scheme != "http" && req.URL.Scheme != "https":
		return refuse(fmt.Sprintf("scheme %q is not http or https", req.URL.Scheme))
	case via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme == "http":
		return refuse("a redirect from https to http would send the request and its credentials unencrypted")
	}
	// Once a chain of redirects has left the origin, its later hops are
	// the other server's choice: trust none of them.
	trusted := sameOrigin(req.URL, via[0].URL)
	for _, r := range via[1:] {
		trusted = trusted && sameOrigin(r.URL, via[0].URL)
	}
	// net/http has copied every header of the first request, kept
	// Authorization for subdomains and added a Referer, which can carry a
	// secret query value: start again from nothing.
	req.Header = http.Header{}
	e.setHeaders(req, trusted)
	return nil
}

// sameOrigin reports whether a and b have the same scheme, host and port
// (RFC 6454), a missing port being the scheme's default.
func sameOrigin(a, b *url.URL) bool {
	return a.Scheme == b.Scheme && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// locationCheck refuses a redirect whose Location does not parse before
// net/http sees it: net/http's own error quotes the Location whole, secrets
// and all.
type locationCheck struct {
	base http.RoundTripper
	e    *endpoint
}

func (t *locationCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return resp, nil
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return resp, nil
	}
	if _, err := req.URL.Parse(loc); err != nil {
		resp.Body.Close()
		return nil, &RedirectError{Location: Redact(loc, t.e.redact...), Reason: "the Location does not parse"}
	}
	return resp, nil
}

// hostLike reports whether s starts with a host (and port), as in
// "db.example.com:5432/…" or "[::1]".
func hostLike(s string) bool {
	end := strings.IndexAny(s, "/?#")
	if end < 0 {
		end = len(s)
	}
	if end == 0 {
		return false
	}
	for _, c := range s[:end] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-_:[]%~", c)) {
			return false
		}
	}
	return true
}
