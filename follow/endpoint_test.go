package follow

import (
	"net/url"
	"strings"
	"testing"
)

func TestEndpoint_URL(t *testing.T) {
	tests := []struct {
		name, raw, param string
		cursor           Order
		want             string
	}{
		{"PathAddsSlash", "http://h/servers", "", "998", "http://h/servers/998"},
		{"PathKeepsSlash", "http://h/servers/", "", "998", "http://h/servers/998"},
		{"PathZero", "http://h/servers/", "", "", "http://h/servers/0"},
		{"PathKeepsQuery", "http://h/servers?x=1", "", "5", "http://h/servers/5?x=1"},
		{"PathBigNumber", "http://h/s/", "", "1700000000123456789", "http://h/s/1700000000123456789"},
		{"PathString", "http://h/s/", "", `"2024-01-01T00:00:00Z"`, "http://h/s/2024-01-01T00:00:00Z"},
		{"PathEscapes", "http://h/s/", "", `"a b/c"`, "http://h/s/a%20b%2Fc"},
		{"Query", "http://h/servers", "since", "998", "http://h/servers?since=998"},
		{"QueryKeepsOthers", "http://h/servers?a=1&since=3&b=2", "since", "998", "http://h/servers?a=1&b=2&since=998"},
		{"QueryEscapes", "http://h/s", "since", `"2024-01-01T00:00:00+01:00"`, "http://h/s?since=2024-01-01T00%3A00%3A00%2B01%3A00"},
		{"Template", "http://h/servers?from={since}", "", "998", "http://h/servers?from=998"},
		{"TemplateInPath", "http://h/v1/{since}/servers", "", "998", "http://h/v1/998/servers"},
		{"TemplateWinsOverParam", "http://h/s?from={since}", "since", "7", "http://h/s?from=7"},
		{"UserinfoRemoved", "http://u:p@h/s/", "", "1", "http://h/s/1"},
		{"UserinfoRemovedAtInPath", "http://u:p%40x@h/s/@me", "", "1", "http://h/s/@me/1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := newEndpoint(tt.raw, tt.param, "", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.url(tt.cursor); got != tt.want {
				t.Errorf("url(%s) = %s, want %s", tt.cursor, got, tt.want)
			}
		})
	}
}

func TestEndpoint_Invalid(t *testing.T) {
	for _, raw := range []string{
		"ftp://h/x", "http:///x", "://x", "http://u:secret@h:badport/",
		// A password or token with an unescaped # / or ? ends the host
		// early: the parse error would quote it.
		"https://u:hunter#secret@h/", "https://u:hun/secret@h/", "https://u:hun?secret@h/",
		"https://u:a/b/secret@h/", "https://tok/secret@h/", "https://u:secret%zz@h/",
		"http://h/%zz?token=secret",
	} {
		_, err := newEndpoint(raw, "", "", nil, nil)
		if err == nil {
			t.Errorf("newEndpoint(%q): no error", raw)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("newEndpoint(%q): error shows the password: %v", raw, err)
		}
	}
}

// The endpoint as shown: a lone user name is a token as often as not.
func TestEndpoint_Display(t *testing.T) {
	tests := []struct{ raw, user, want string }{
		{"https://ghp_TOKEN@h/x", "", "https://***@h/x"},
		{"https://alice:pw@h/x", "", "https://alice:***@h/x"},
		{"https://h/x", "bob:pw", "https://bob:***@h/x"},
		{"https://h/x", "TOKEN", "https://***@h/x"},
		{"https://alice:pw@h/x?tenant=acme&since=1", "", "https://alice:***@h/x?tenant=***&since=1"},
	}
	for _, tt := range tests {
		e, err := newEndpoint(tt.raw, "", tt.user, nil, []string{"Tenant"})
		if err != nil {
			t.Fatal(err)
		}
		if e.display != tt.want {
			t.Errorf("newEndpoint(%q, user %q) shows %s, want %s", tt.raw, tt.user, e.display, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://user:pass@host/x", "https://user:***@host/x"},
		{"https://host/x?token=abc&since=5", "https://host/x?token=***&since=5"},
		{"https://host/x?api_key=abc", "https://host/x?api_key=***"},
		{"http://h/s?from={since}", "http://h/s?from={since}"},
		{"http://user@host/", "http://***@host/"},
		{"https://ghp_TOKEN@host/x", "https://***@host/x"},
		{"http://u:p%zz@host/", "http://u:***@host/"},
		// Passwords and tokens with characters that end the host early.
		{"https://u:hunter#2@host/x", "https://u:***@host/x"},
		{"https://u:hun/ter2@host/x", "https://u:***@host/x"},
		{"https://u:hun?ter2@host/x", "https://u:***@host/x"},
		{"https://u:a/b/c@host/x", "https://u:***@host/x"},
		{"https://tok/en@host/x", "https://***@host/x"},
		{"https://u:p@ss/w@host/", "https://u:***@host/"},
		{"http://user:/G7x+Q==@host/t/", "http://user:***@host/t/"},
		{"http://user:12/ab=cd&x@host/", "http://user:***@host/"},
		{"http://h/a/b@c?d=e@f", "http://h/a/b@c?d=e@f"},
		{"http://user:p@ss#w@127.0.0.1:34969/", "http://user:***@127.0.0.1:34969/"},
		{"http://user:p@ss?w#rd@127.0.0.1:1/x", "http://user:***@127.0.0.1:1/x"},
		{"http://user:2024#Summer@host/x", "http://user:***@host/x"},
		{"https://tok@en?x@host/", "https://***@host/"},
		// An '@' after '?' that a host follows: a password's or a query
		// value's? Hidden either way (and refused by New).
		{"http://h?email=a@b.example", "http://***@b.example"},
		{"http://user:p@ss?w=rd@127.0.0.1:1/x", "http://user:***@127.0.0.1:1/x"},
		{"http://admin:8?kQ=z@127.0.0.1:1/x", "http://admin:***@127.0.0.1:1/x"},
		// An @ after the host that is not a password.
		{"http://u:p%40x@h/s/@me", "http://u:***@h/s/@me"},
		{"http://h/s/@me", "http://h/s/@me"},
		{"http://h:8080/api/@me/x", "http://h:8080/api/@me/x"},
		{"http://h/@me", "http://h/@me"},
		{"http://h/x?email=a@b.example", "http://h/x?email=a@b.example"},
		// Secret query values, found without a parse.
		{"http://h/%zz?token=abc", "http://h/%zz?token=***"},
		{"http://h/x#access_token=abc&state=1", "http://h/x#access_token=***&state=1"},
		{"http://h/x?sig=1&signature=2&X-Amz-Signature=3&X-Goog-Signature=4", "http://h/x?sig=***&signature=***&X-Amz-Signature=***&X-Goog-Signature=***"},
		{"http://h/x?pwd=1&pass=2&jwt=3&bearer=4&access-code=5", "http://h/x?pwd=***&pass=***&jwt=***&bearer=***&access-code=***"},
		{"http://h/x?client_secret=1&refresh_token=2&db_pass=3&access_code=4", "http://h/x?client_secret=***&refresh_token=***&db_pass=***&access_code=***"},
		{"http://h/x?passage=1&design=2&signal=3&country_code=4", "http://h/x?passage=1&design=2&signal=3&country_code=4"},
		// No scheme (a user's slip): the userinfo is still found.
		{"user:pw@localhost/x/", "user:***@localhost/x/"},
		{"tok@h:4567/x/?token=1", "***@h:4567/x/?token=***"},
		{"localhost/x/@me", "localhost/x/@me"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := Redact("http://h/x?Tenant=acme&since=1", "tenant"); got != "http://h/x?Tenant=***&since=1" {
		t.Errorf("Redact with an added name: %s", got)
	}
}

func TestSecretName(t *testing.T) {
	for name, want := range map[string]bool{
		"Authorization": true, "X-Api-Key": true, "Cookie": true, "X-Pass": true, "Bearer": true,
		"X-Amz-Signature": true, "client_secret": true, "ACCESS_CODE": true, "x-sig": true, "db.pwd": true,
		"X-Trace": false, "Accept": false, "passage": false, "design": false, "zipcode": false,
	} {
		if got := SecretName(name); got != want {
			t.Errorf("SecretName(%q) = %v, want %v", name, got, want)
		}
	}
	if !SecretName("x-tenant", "X_Tenant") || SecretName("x-tenant-id", "x-tenant") {
		t.Error("an added name matches the whole name, any case, - and _ alike")
	}
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
