package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lockstep/lockstep/follow"
)

// watchedTransport counts the bytes of every response body and, with
// --verbose, shows each request and response like curl -v: method and
// URL, status, headers, then the bytes read and the time taken. Nothing
// secret is shown: URLs go through follow.Redact, and a header's value is
// shown only when its name is not secret (follow.SecretName) and the user
// did not give it with -H, whose values are never shown.
type watchedTransport struct {
	base   http.RoundTripper
	log    *logger
	redact []string
	hidden []string // canonical names of the -H headers
	bytes  atomic.Int64
	// onBytes is told of every read, for the metrics; may be nil.
	onBytes func(n int)
}

func (t *watchedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !t.log.verbose() {
		resp, err := t.base.RoundTrip(req)
		if err == nil {
			resp.Body = &countedBody{ReadCloser: resp.Body, t: t}
		}
		return resp, err
	}
	start := time.Now()
	shown := follow.Redact(req.URL.String(), t.redact...)
	t.log.debug(fmt.Sprintf("> %s %s\n%s", req.Method, shown, t.headerLines(">", req.Header)),
		"method", req.Method, "url", shown, "headers", t.headerMap(req.Header))
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		t.log.debug(fmt.Sprintf("* %s %s failed after %s: %v", req.Method, shown, roundDelay(time.Since(start)), follow.Redact(err.Error(), t.redact...)),
			"url", shown, "err", follow.Redact(err.Error(), t.redact...), "elapsed", time.Since(start))
		return nil, err
	}
	t.log.debug(fmt.Sprintf("< %s %s after %s\n%s", resp.Proto, resp.Status, roundDelay(time.Since(start)), t.headerLines("<", resp.Header)),
		"url", shown, "status", resp.StatusCode, "headers", t.headerMap(resp.Header), "elapsed", time.Since(start))
	resp.Body = &countedBody{ReadCloser: resp.Body, t: t, shown: shown, start: start, verbose: true}
	return resp, nil
}

// secret reports whether a header's value must not be shown.
func (t *watchedTransport) secret(name string) bool {
	return follow.SecretName(name, t.redact...) || slices.Contains(t.hidden, http.CanonicalHeaderKey(name))
}

// urlInHeader finds the URLs a header value may hold (Location, Link).
var urlInHeader = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s<>"]+`)

// shownValue is a header's value as --verbose shows it: hidden when its
// name is secret, and with any URL in it redacted (a redirect's Location
// may carry a password or a token).
func (t *watchedTransport) shownValue(name, v string) string {
	if t.secret(name) {
		return "***"
	}
	switch http.CanonicalHeaderKey(name) {
	case "Location", "Content-Location", "Link", "Refresh":
		// These hold URL references, relative ones too ("/b/?token=…",
		// "//user:pw@host/"): each is redacted as a URL.
		return urlRef.ReplaceAllStringFunc(v, func(ref string) string {
			if strings.HasPrefix(ref, "//") {
				return strings.TrimPrefix(follow.Redact("http:"+ref, t.redact...), "http:")
			}
			return follow.Redact(ref, t.redact...)
		})
	}
	return urlInHeader.ReplaceAllStringFunc(v, func(u string) string { return follow.Redact(u, t.redact...) })
}

// urlRef is a URL reference in a Location, Link or Refresh value: all but
// the Link's brackets, parameters and Refresh's delay.
var urlRef = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*:)?[/?][^\s<>";,]*|[A-Za-z][A-Za-z0-9+.-]*://[^\s<>";,]*`)

func (t *watchedTransport) headerLines(dir string, h http.Header) string {
	var lines []string
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range h[name] {
			lines = append(lines, dir+" "+name+": "+t.shownValue(name, v))
		}
	}
	return strings.Join(lines, "\n")
}

func (t *watchedTransport) headerMap(h http.Header) map[string]string {
	m := make(map[string]string, len(h))
	for name, vs := range h {
		m[name] = t.shownValue(name, strings.Join(vs, ", "))
	}
	return m
}

// countedBody counts what is read of a response body and, with
// --verbose, says how much when it is closed.
type countedBody struct {
	io.ReadCloser
	t       *watchedTransport
	n       atomic.Int64 // read on the decoding goroutine, reported on the caller's
	shown   string
	start   time.Time
	verbose bool
	closed  bool
}

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.n.Add(int64(n))
		b.t.bytes.Add(int64(n))
		if b.t.onBytes != nil {
			b.t.onBytes(n)
		}
	}
	return n, err
}

func (b *countedBody) Close() error {
	if b.verbose && !b.closed {
		b.closed = true
		b.t.log.debug(fmt.Sprintf("* %s: %s %s in %s", b.shown, thousands(int(b.n.Load())), plural(int(b.n.Load()), "byte", "bytes"), roundDelay(time.Since(b.start))),
			"url", b.shown, "bytes", b.n.Load(), "elapsed", time.Since(b.start))
	}
	return b.ReadCloser.Close()
}

// watched is the transport followConfig gave cfg.
func watched(cfg follow.Config) *watchedTransport {
	t, _ := cfg.Client.Transport.(*watchedTransport)
	return t
}
