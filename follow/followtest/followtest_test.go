package followtest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/follow/followtest"
	"github.com/lockstep/lockstep/state"
)

func rec(id, order int) string {
	return fmt.Sprintf(`{"id":%d,"updated_at":%d,"deleted_at":null}`, id, order)
}

// replicate follows srv until caught up (finite) and returns the table.
func replicate(t *testing.T, cfg follow.Config) (*state.Table, []follow.Event) {
	t.Helper()
	if cfg.Idle == 0 {
		cfg.Idle = 200 * time.Millisecond
	}
	f, err := follow.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tb := state.NewTable()
	var events []follow.Event
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = f.Run(ctx, func(ev follow.Event) error {
		if ev.Kind == follow.EventRecord {
			tb.Apply(ev.Record)
		}
		if ev.Kind != follow.EventQuiet {
			events = append(events, ev)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Run: %v (events %v)", err, events)
	}
	return tb, events
}

func tableLines(tb *state.Table) []string {
	var out []string
	for _, r := range tb.All() {
		out = append(out, string(r))
	}
	return out
}

func TestServer_FaultsThenConvergence(t *testing.T) {
	var recs []string
	for i := 1; i <= 20; i++ {
		recs = append(recs, rec(i, i))
	}
	tests := []struct {
		name   string
		faults []followtest.Fault
	}{
		{"DropAfterRecords", []followtest.Fault{{After: 5, Drop: true}}},
		{"DropMidRecord", []followtest.Fault{{After: 3, DropBytes: 17}}},
		{"ServerErrors", []followtest.Fault{{Status: 500}, {Status: 503}, {Status: 429, RetryAfter: "0"}}},
		{"StallWithHeartbeats", []followtest.Fault{{After: 2, Stall: 100 * time.Millisecond, Heartbeat: 20 * time.Millisecond}}},
		{"OutOfOrderAndDuplicates", []followtest.Fault{{After: 10, Inject: []byte(rec(3, 3) + "\n" + rec(10, 10) + "\n" + rec(2, 1) + "\n")}}},
		{"TombstoneForUnknownKey", []followtest.Fault{{After: 1, Inject: []byte(`{"id":999,"updated_at":5,"deleted_at":5}` + "\n")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := followtest.NewServer(recs...)
			defer srv.Close()
			srv.Faults(tt.faults...)
			tb, _ := replicate(t, follow.Config{URL: srv.URL + "/s/"})
			if got, want := strings.Join(tableLines(tb), "\n"), strings.Join(srv.Table(), "\n"); got != want {
				t.Fatalf("replica:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestServer_GzipAndTLS(t *testing.T) {
	srv := followtest.NewUnstartedServer(rec(1, 1), rec(2, 2))
	srv.Gzip = true
	srv.StartTLS()
	defer srv.Close()
	if _, err := follow.New(follow.Config{URL: srv.URL + "/"}); err != nil {
		t.Fatal(err)
	}
	tb, _ := replicate(t, follow.Config{URL: srv.URL + "/", Client: srv.Client()})
	if tb.Len() != 2 {
		t.Fatalf("Len %d", tb.Len())
	}
	// Without trusting the certificate: a clear error naming --cacert.
	f, _ := follow.New(follow.Config{URL: srv.URL + "/", RetryFor: 100 * time.Millisecond})
	err := f.Run(context.Background(), func(follow.Event) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "certificate") || !strings.Contains(err.Error(), "--cacert") {
		t.Fatalf("untrusted TLS: %v", err)
	}
}

func TestServer_StatusFault(t *testing.T) {
	srv := followtest.NewServer(rec(1, 1))
	defer srv.Close()
	srv.Faults(followtest.Fault{Status: http.StatusUnauthorized, Body: "who are you"})
	f, _ := follow.New(follow.Config{URL: srv.URL + "/"})
	err := f.Run(context.Background(), func(follow.Event) error { return nil })
	var se *follow.StatusError
	if !errors.As(err, &se) || se.Code != 401 || !strings.Contains(se.Body, "who are you") {
		t.Fatalf("err %v", err)
	}
}

// Example shows a replica kept by a Go program, tested against followtest.
func Example() {
	srv := followtest.NewServer(
		`{"id":1,"updated_at":10,"deleted_at":null,"ip":"10.0.0.1"}`,
		`{"id":2,"updated_at":11,"deleted_at":null,"ip":"10.0.0.2"}`,
	)
	defer srv.Close()
	srv.Append(`{"id":1,"updated_at":12,"deleted_at":12}`)

	f, _ := follow.New(follow.Config{URL: srv.URL + "/servers/", Idle: 100 * time.Millisecond})
	table := state.NewTable()
	f.Run(context.Background(), func(ev follow.Event) error {
		if ev.Kind == follow.EventRecord {
			table.Apply(ev.Record)
		}
		return nil
	})
	for _, rec := range table.All() {
		fmt.Println(string(rec))
	}
	// Output: {"id":2,"updated_at":11,"deleted_at":null,"ip":"10.0.0.2"}
}
