package follow

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
	display    string // raw, redacted
}

func newEndpoint(rawURL, sinceParam, user string, header http.Header) (*endpoint, error) {
	probe := strings.ReplaceAll(rawURL, "{since}", "0")
	u, err := url.Parse(probe)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %s: %v", Redact(rawURL), unwrapURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("invalid URL %s: scheme must be http or https", Redact(rawURL))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid URL %s: no host", Redact(rawURL))
	}
	e := &endpoint{sinceParam: sinceParam, header: header.Clone()}
	if e.header == nil {
		e.header = http.Header{}
	}
	if u.User != nil {
		e.user = u.User.Username()
		e.pass, _ = u.User.Password()
		e.hasAuth = true
		// Remove the userinfo from the template itself, by position, so
		// that no request or message can carry it. The authority ends at
		// the first / ? or #; its last @ ends the userinfo.
		scheme := strings.Index(rawURL, "://") + 3
		authority := rawURL[scheme:]
		if end := strings.IndexAny(authority, "/?#"); end >= 0 {
			authority = authority[:end]
		}
		at := scheme + strings.LastIndex(authority, "@")
		rawURL = rawURL[:scheme] + rawURL[at+1:]
	}
	if user != "" {
		e.user, e.pass, _ = strings.Cut(user, ":")
		e.hasAuth = true
	}
	e.raw = rawURL
	e.display = Redact(rawURL)
	if e.hasAuth {
		e.display = redactUser(e.display, e.user)
	}
	return e, nil
}

func redactUser(display, user string) string {
	i := strings.Index(display, "://")
	if i < 0 {
		return display
	}
	return display[:i+3] + url.User(user).String() + ":***@" + display[i+3:]
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
	for k, v := range e.header {
		req.Header[k] = v
	}
	if e.hasAuth {
		req.SetBasicAuth(e.user, e.pass)
	}
	req.Header.Set("Accept", "application/x-ndjson, application/json;q=0.9, */*;q=0.1")
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "lockstep")
	}
	return req, nil
}

// Redact returns a URL for display: a password in the userinfo becomes ***,
// and so does the value of any query parameter whose name looks like a
// secret (token, key, password, signature, …). Text that does not parse is
// returned with everything between "://" and "@" masked.
func Redact(raw string) string {
	u, err := url.Parse(strings.ReplaceAll(raw, "{since}", "SINCEPLACEHOLDER"))
	if err != nil {
		if i, j := strings.Index(raw, "://"), strings.LastIndex(raw, "@"); i >= 0 && j > i {
			return raw[:i+3] + "***@" + raw[j+1:]
		}
		return raw
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "PASSWORDPLACEHOLDER")
		}
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, p := range parts {
			name, _, ok := strings.Cut(p, "=")
			if n, err := url.QueryUnescape(name); ok && err == nil && SecretName(n) {
				parts[i] = name + "=***"
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	s := u.String()
	s = strings.Replace(s, "PASSWORDPLACEHOLDER", "***", 1)
	return strings.ReplaceAll(s, "SINCEPLACEHOLDER", "{since}")
}

// SecretName reports whether a header or query parameter name looks like it
// carries a credential, so that its value is never shown.
func SecretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"auth", "token", "secret", "password", "passwd", "key", "cookie", "session", "signature", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
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

// NewClient returns the HTTP client a Follower uses: TLS verification with
// optional extra CAs, TCP keepalive, transparent gzip, at most 10 redirects,
// and no credentials forwarded to another host. It sets no overall timeout:
// an endless response is healthy, and stalls are the Follower's to detect.
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
	return &http.Client{Transport: tr, CheckRedirect: checkRedirect}, nil
}

const maxRedirects = 10

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if req.URL.Host != via[0].URL.Host {
		// net/http keeps credentials for subdomains; lockstep keeps them
		// for the exact host only.
		for name := range req.Header {
			if SecretName(name) {
				req.Header.Del(name)
			}
		}
	}
	return nil
}
