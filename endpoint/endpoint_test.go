package endpoint

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestServer_Backlog(t *testing.T) {
	s := New(Options{Finite: true})
	for _, r := range []string{
		`{"id":1,"updated_at":30,"deleted_at":null}`,
		`{"id":2,"updated_at":10,"deleted_at":null}`,
		`{"id":3,"updated_at":20,"deleted_at":20}`,
		`{"id":2,"updated_at":5,"deleted_at":null,"stale":true}`,
		`{"id":4,"updated_at":20,"deleted_at":null}`,
	} {
		if err := s.Append([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	tests := []struct{ path, want string }{
		// Cursor 0: sorted by order value, tombstones left out.
		{"/s/0", "2@10 4@20 1@30"},
		{"/s/", "2@10 4@20 1@30"},
		// Since is inclusive, and tombstones come.
		{"/s/20", "3@20 4@20 1@30"},
		{"/s?since=20", "3@20 4@20 1@30"},
		{"/s/31", ""},
	}
	for _, tt := range tests {
		resp, err := http.Get(srv.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := summary(string(b)); got != tt.want {
			t.Errorf("GET %s: %q, want %q", tt.path, got, tt.want)
		}
	}
	if resp, _ := http.Get(srv.URL + "/s/notanumber"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad cursor: %s", resp.Status)
	}
	if err := s.Append([]byte(`{"id":9,"updated_at":"x"}`)); err == nil || !strings.Contains(err.Error(), "numbers") {
		t.Errorf("order of the other kind: %v", err)
	}
}

// summary lists "key@order" for each line of a response.
func summary(body string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
		if l == "" {
			continue
		}
		id := l[strings.Index(l, `"id":`)+5 : strings.Index(l, ",")]
		rest := l[strings.Index(l, `"updated_at":`)+13:]
		out = append(out, id+"@"+rest[:strings.IndexAny(rest, ",}")])
	}
	return strings.Join(out, " ")
}

// openStream serves s and opens an endless response from cursor 0, closed
// (and the server with it) when the test ends.
func openStream(t *testing.T, s *Server) *http.Response {
	t.Helper()
	srv := httptest.NewServer(s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/s/0", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		resp.Body.Close()
		cancel()
		srv.Close()
	})
	return resp
}

func TestServer_StreamsAppendedChanges(t *testing.T) {
	s := New(Options{Heartbeat: 20 * time.Millisecond})
	s.Append([]byte(`{"id":1,"updated_at":1}`))
	resp := openStream(t, s)
	go func() {
		time.Sleep(50 * time.Millisecond)
		s.Append([]byte(`{"id":2,"updated_at":2}`))
	}()
	var got strings.Builder
	buf := make([]byte, 1024)
	for !strings.Contains(got.String(), `"id":2`) {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("read: %v; got %q", err, got.String())
		}
	}
	if !strings.Contains(got.String(), "}\n\n") {
		t.Fatalf("no heartbeat in %q", got.String())
	}
}

// Each append wakes the stream, which asks again from the order value it
// sent last, inclusive: the records already sent there come again and must
// be dropped, the new ones at that value sent.
func TestServer_StreamsEachChangeAtOneOrderOnce(t *testing.T) {
	s := New(Options{Heartbeat: -1})
	s.Append([]byte(`{"id":1,"updated_at":5}`))
	lines := bufio.NewReader(openStream(t, s).Body)
	var got []string
	read := func() {
		t.Helper()
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v; got %q", err, got)
		}
		got = append(got, strings.TrimSpace(l))
	}
	read()
	for _, rec := range []string{`{"id":2,"updated_at":5}`, `{"id":3,"updated_at":5}`, `{"id":4,"updated_at":6}`} {
		s.Append([]byte(rec))
		read()
	}
	want := `{"id":1,"updated_at":5} {"id":2,"updated_at":5} {"id":3,"updated_at":5} {"id":4,"updated_at":6}`
	if strings.Join(got, " ") != want {
		t.Errorf("streamed %q, want %q", got, want)
	}
}
