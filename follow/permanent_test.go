package follow

import (
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Errors that no retry can fix stop a follower at once, even one that
// follows for ever: retrying would only hide them.
func TestFollower_HTTPSToPlainHTTPServerFailsAtOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(body(rec(1, 1))))
	defer srv.Close()
	r := follow(t, Config{URL: strings.Replace(srv.URL, "http://", "https://", 1) + "/", Follow: true}, nil)
	if r.err == nil || !strings.Contains(r.err.Error(), "use http://") || r.count(EventRetry) != 0 {
		t.Fatalf("err %v, %d retries; want 'use http://' and none", r.err, r.count(EventRetry))
	}
}

func TestFollower_CertificateForAnotherHostFailsAtOnce(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(body(rec(1, 1))))
	defer srv.Close()
	client := srv.Client() // trusts the test CA, whose certificate names 127.0.0.1 and example.com
	u := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/"
	r := follow(t, Config{URL: u, Follow: true, Client: client}, nil)
	var he x509.HostnameError
	if !errors.As(r.err, &he) && !strings.Contains(r.err.Error(), "another host") || r.count(EventRetry) != 0 {
		t.Fatalf("err %v, %d retries; want a certificate for another host and no retry", r.err, r.count(EventRetry))
	}
}
