package endpoint_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/endpoint"
	"github.com/lockstep/lockstep/follow"
)

func get(t *testing.T, ctx context.Context, url string, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestHandler_EndlessSendsEachNewChangeOnce(t *testing.T) {
	src := &servers{rows: []row{{id: 1, updated: 10}, {id: 2, updated: 20}}, changed: make(chan struct{})}
	srv := httptest.NewServer(endpoint.NewHandler(src, endpoint.Options{Heartbeat: 20 * time.Millisecond}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	lines := bufio.NewReader(get(t, ctx, srv.URL+"/s/20").Body)
	next := func() string {
		t.Helper()
		l, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return l
	}
	if got := next(); !strings.Contains(got, `"id":2`) {
		t.Fatalf("backlog: %q", got)
	}
	if got := next(); got != "\n" {
		t.Fatalf("want a heartbeat, got %q", got)
	}
	// A change at the order value already sent: the re-query is inclusive,
	// and must not send id 2 again.
	src.add(row{id: 3, updated: 20})
	src.add(row{id: 4, updated: 25, deleted: true})
	var got []string
	for len(got) < 2 {
		if l := next(); l != "\n" {
			got = append(got, strings.TrimSpace(l))
		}
	}
	if want := `{"id":3,"updated_at":20,"deleted_at":null} {"id":4,"updated_at":25,"deleted_at":25}`; strings.Join(got, " ") != want {
		t.Errorf("streamed %q, want %q", got, want)
	}
}

// backwards is a Source that breaks its contract.
type backwards struct{}

func (backwards) Changes(_ context.Context, _ follow.Order, fn func([]byte) error) error {
	if err := fn([]byte(`{"id":1,"updated_at":20}`)); err != nil {
		return err
	}
	return fn([]byte(`{"id":2,"updated_at":10}`))
}
func (backwards) Changed() <-chan struct{} { return nil }

func TestHandler_SourceOutOfOrderCutsTheResponse(t *testing.T) {
	logged := make(chan error, 1)
	h := endpoint.NewHandler(backwards{}, endpoint.Options{ErrorLog: func(err error) { logged <- err }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	// Nothing was flushed yet: the client sees the connection close
	// instead of a response; later, it would see a body cut short.
	resp, err := http.Get(srv.URL + "/s/0")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("the response ended cleanly, want it cut")
	}
	if err := <-logged; !strings.Contains(err.Error(), "must sort by order value") {
		t.Errorf("logged %v", err)
	}
}

func TestHandler_CursorsAndGzip(t *testing.T) {
	s := endpoint.New(endpoint.Options{Finite: true, Gzip: true})
	for _, r := range []string{`{"id":1,"updated_at":"2024-01-02T00:00:00Z"}`, `{"id":2,"updated_at":"2024-01-03T00:00:00Z"}`} {
		if err := s.Append([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx := context.Background()
	for _, path := range []string{"/s/2024-01-03T00:00:00Z", "/s?since=2024-01-03T00%3A00%3A00Z"} {
		b, _ := io.ReadAll(get(t, ctx, srv.URL+path).Body)
		if got := strings.TrimSpace(string(b)); !strings.HasPrefix(got, `{"id":2`) || strings.Contains(got, "\n") {
			t.Errorf("GET %s: %q", path, got)
		}
	}
	if resp := get(t, ctx, srv.URL+"/s/0", "Accept-Encoding", "gzip"); resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	if resp := get(t, ctx, srv.URL+"/s/0", "Accept-Encoding", "gzip;q=0"); resp.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
}

// filtered embeds a Server and overrides Changes, as a Source that hides,
// transforms or breaks records would.
type filtered struct{ *endpoint.Server }

func (f filtered) Changes(ctx context.Context, since follow.Order, fn func([]byte) error) error {
	return f.Server.Changes(ctx, since, func(rec []byte) error {
		if strings.Contains(string(rec), `"secret"`) {
			return nil
		}
		return fn(rec)
	})
}

// A Handler serves what its Source's Changes gives, read with the
// Handler's own fields, even when the Source is, or embeds, a Server that
// parsed its records already.
func TestHandler_ServerShortcutOnlyForItself(t *testing.T) {
	s := endpoint.New(endpoint.Options{})
	for _, r := range []string{
		`{"id":1,"updated_at":10,"deleted_at":null}`,
		`{"id":2,"updated_at":20,"deleted_at":null,"secret":"x"}`,
		`{"id":3,"updated_at":30,"deleted_at":null,"gone":true}`,
	} {
		if err := s.Append([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		src  endpoint.Source
		opts endpoint.Options
		want string // the ids sent from cursor 0
	}{
		{"the server", s, endpoint.Options{}, "1 2 3"},
		{"a source that embeds it", filtered{s}, endpoint.Options{}, "1 3"},
		{"other fields", s, endpoint.Options{Fields: follow.DecoderOptions{Deleted: "gone"}}, "1 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Finite = true
			srv := httptest.NewServer(endpoint.NewHandler(tt.src, tt.opts))
			defer srv.Close()
			resp := get(t, context.Background(), srv.URL+"/x/0")
			b, _ := io.ReadAll(resp.Body)
			var ids []string
			for _, l := range strings.Fields(string(b)) {
				ids = append(ids, l[len(`{"id":`):strings.Index(l, ",")])
			}
			if got := strings.Join(ids, " "); got != tt.want {
				t.Errorf("sent ids %q, want %q:\n%s", got, tt.want, b)
			}
		})
	}
}
