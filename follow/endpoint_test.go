package follow

import (
	"net/http"
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
			e, err := newEndpoint(tt.raw, tt.param, "", nil)
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
	for _, raw := range []string{"ftp://h/x", "http:///x", "://x", "http://u:secret@h:badport/"} {
		_, err := newEndpoint(raw, "", "", nil)
		if err == nil {
			t.Errorf("newEndpoint(%q): no error", raw)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("newEndpoint(%q): error shows the password: %v", raw, err)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://user:pass@host/x", "https://user:***@host/x"},
		{"https://host/x?token=abc&since=5", "https://host/x?token=***&since=5"},
		{"https://host/x?api_key=abc", "https://host/x?api_key=***"},
		{"http://h/s?from={since}", "http://h/s?from={since}"},
		{"http://user@host/", "http://user@host/"},
		{"http://u:p%zz@host/", "http://***@host/"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCheckRedirect_DropsCredentialsForOtherHosts(t *testing.T) {
	first, _ := http.NewRequest("GET", "http://a.example/x", nil)
	next, _ := http.NewRequest("GET", "http://sub.a.example/x", nil)
	next.Header.Set("Authorization", "Basic xyz")
	next.Header.Set("X-Api-Token", "t")
	next.Header.Set("X-Trace", "keep")
	if err := checkRedirect(next, []*http.Request{first}); err != nil {
		t.Fatal(err)
	}
	if next.Header.Get("Authorization") != "" || next.Header.Get("X-Api-Token") != "" || next.Header.Get("X-Trace") != "keep" {
		t.Fatalf("headers after redirect to another host: %v", next.Header)
	}
	same, _ := http.NewRequest("GET", "http://a.example/y", nil)
	same.Header.Set("Authorization", "Basic xyz")
	checkRedirect(same, []*http.Request{first})
	if same.Header.Get("Authorization") == "" {
		t.Fatal("Authorization dropped on a same-host redirect")
	}
	via := make([]*http.Request, maxRedirects)
	for i := range via {
		via[i] = first
	}
	if err := checkRedirect(same, via); err == nil {
		t.Fatal("11th redirect followed")
	}
}
