package follow

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder answers with one record and keeps the headers of every request
// it receives.
type recorder struct {
	mu      sync.Mutex
	headers []http.Header
}

func (s *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.headers = append(s.headers, r.Header.Clone())
	s.mu.Unlock()
	w.Write([]byte(rec(1, 1)))
}

func (s *recorder) received() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.headers...)
}

// redirect answers every request with a 301 to where(r).
func redirect(where func(r *http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, where(r), http.StatusMovedPermanently)
	})
}

// secretConfig asks for url with every kind of credential the user can
// give: a URL password, a secret query value and two custom headers whose
// names do not look secret.
func secretConfig(url string) Config {
	h := http.Header{}
	h.Set("X-Pass", "HEADERSECRET")
	h.Set("Bearer", "BEARERSECRET")
	h.Set("X-Trace", "trace-1")
	return Config{
		URL:      strings.Replace(url, "://", "://alice:URLSECRET@", 1) + "/s/?access_token=QUERYSECRET",
		Header:   h,
		RetryFor: time.Millisecond,
	}
}

// No request ever carries a Referer; a redirect to another origin carries
// none of the user's headers and no credentials; one to the same origin
// keeps them.
func TestRedirect_CredentialsStayWithTheOrigin(t *testing.T) {
	data := &recorder{}
	other := httptest.NewServer(data) // another port: another origin
	defer other.Close()
	mux := http.NewServeMux()
	mux.Handle("/data/", data)
	var target string
	mux.Handle("/s/", redirect(func(r *http.Request) string { return target + "/data/" }))
	first := httptest.NewServer(mux)
	defer first.Close()
	port := first.URL[strings.LastIndex(first.URL, ":"):]
	tests := []struct {
		name, target string
		sameOrigin   bool
	}{
		{"SameOrigin", first.URL, true},
		{"OtherPort", other.URL, false},
		{"OtherHost", "http://localhost" + port, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target = tt.target
			before := len(data.received())
			r := follow(t, secretConfig(first.URL), nil)
			if r.err != nil || len(r.keys) != 1 {
				t.Fatalf("err %v keys %v", r.err, r.keys)
			}
			got := data.received()[before:]
			if len(got) != 1 {
				t.Fatalf("%d requests reached the target", len(got))
			}
			h := got[0]
			if ref := h.Get("Referer"); ref != "" {
				t.Errorf("Referer sent: %q", ref)
			}
			for _, name := range []string{"Authorization", "X-Pass", "Bearer", "X-Trace"} {
				if sent := h.Get(name) != ""; sent != tt.sameOrigin {
					t.Errorf("%s sent: %v, want %v", name, sent, tt.sameOrigin)
				}
			}
			if ua := h.Get("User-Agent"); ua != "lockstep" {
				t.Errorf("User-Agent %q, want lockstep", ua)
			}
		})
	}
}

// A redirect from https to http is never followed, whatever the host: the
// plain request would carry the credentials in clear.
func TestRedirect_HTTPSToHTTPRefused(t *testing.T) {
	plain := &recorder{}
	insecure := httptest.NewServer(plain)
	defer insecure.Close()
	secure := httptest.NewTLSServer(redirect(func(r *http.Request) string { return insecure.URL + r.URL.RequestURI() }))
	defer secure.Close()
	cfg := secretConfig(secure.URL)
	cfg.Client = secure.Client()
	r := follow(t, cfg, nil)
	var re *RedirectError
	if !errors.As(r.err, &re) || !strings.Contains(r.err.Error(), "https to http") {
		t.Fatalf("err %v, want a *RedirectError saying https to http", r.err)
	}
	if r.count(EventRetry) != 0 {
		t.Fatalf("refused redirect retried: %v", r.events)
	}
	if n := len(plain.received()); n != 0 {
		t.Fatalf("%d plain requests sent", n)
	}
	assertNoSecret(t, r.err.Error())
}

// A Location that does not parse or names another scheme is a permanent
// error, shown redacted; so is one redirect too many.
func TestRedirect_BadLocationIsPermanent(t *testing.T) {
	tests := []struct{ name, location, want string }{
		{"OtherScheme", "ftp://127.0.0.1/s/", `scheme "ftp"`},
		{"Unparseable", "http://bob:LOCATIONSECRET#x@[::1/s/", "does not parse"},
		{"UnparseableEscape", "http://127.0.0.1/%zz?token=LOCATIONSECRET", "does not parse"},
		{"Loop", "/s/", "more than 10 redirects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", tt.location)
				w.WriteHeader(http.StatusFound)
			}))
			defer srv.Close()
			r := follow(t, secretConfig(srv.URL), nil)
			var re *RedirectError
			if !errors.As(r.err, &re) || !strings.Contains(r.err.Error(), tt.want) {
				t.Fatalf("err %v, want a *RedirectError saying %s", r.err, tt.want)
			}
			if r.count(EventRetry) != 0 {
				t.Fatalf("retried: %v", r.events)
			}
			assertNoSecret(t, r.err.Error())
		})
	}
}

// A plain-HTTP endpoint that redirects to https:// on a server that speaks
// plain HTTP is said to redirect wrongly, not told to use http://, which
// its URL already does.
func TestRedirect_ToHTTPSOnPlainHTTP(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", strings.Replace(srv.URL, "http://", "https://", 1)+"/s/")
		w.WriteHeader(http.StatusFound)
	}))
	defer srv.Close()
	r := follow(t, Config{URL: srv.URL + "/s/"}, nil)
	if r.err == nil || !strings.Contains(r.err.Error(), "the endpoint's redirect is wrong") || r.count(EventRetry) != 0 {
		t.Fatalf("err %v, events %v", r.err, r.events)
	}
}

func assertNoSecret(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, "SECRET") {
		t.Fatalf("secret shown: %s", s)
	}
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"http://h/x", "http://h/y?z", true},
		{"http://h/x", "http://H:80/y", true},
		{"https://h/x", "https://h:443/y", true},
		{"http://h/x", "https://h/x", false},
		{"http://h:8080/x", "https://h:8080/x", false},
		{"http://h/x", "http://h:8080/x", false},
		{"http://h/x", "http://sub.h/x", false},
	}
	for _, tt := range tests {
		a, b := mustParse(t, tt.a), mustParse(t, tt.b)
		if got := sameOrigin(a, b); got != tt.want {
			t.Errorf("sameOrigin(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
