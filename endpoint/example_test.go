package endpoint_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/lockstep/lockstep/endpoint"
	"github.com/lockstep/lockstep/follow"
)

// servers is what an endpoint's author writes: a query for the changes
// since a cursor, in order, and a channel that says when there are more.
// Here the data is a slice kept in order; a database would run
// SELECT … WHERE updated_at >= $1 ORDER BY updated_at.
type servers struct {
	mu      sync.Mutex
	rows    []row // by updated
	changed chan struct{}
	horizon int // tombstones older than this are forgotten
}

type row struct {
	id, updated int
	deleted     bool
}

func (s *servers) Changes(ctx context.Context, since follow.Order, fn func([]byte) error) error {
	s.mu.Lock()
	rows := append([]row(nil), s.rows...)
	s.mu.Unlock()
	for _, r := range rows {
		if follow.Order(fmt.Sprint(r.updated)).Compare(since) < 0 {
			continue
		}
		deleted := "null"
		if r.deleted {
			deleted = fmt.Sprint(r.updated)
		}
		if err := fn(fmt.Appendf(nil, `{"id":%d,"updated_at":%d,"deleted_at":%s}`, r.id, r.updated, deleted)); err != nil {
			return err
		}
	}
	return nil
}

// add records a change and wakes the open responses.
func (s *servers) add(r row) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows = append(s.rows, r)
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *servers) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Horizon makes the Handler answer 410 Gone to cursors it cannot answer
// completely any more.
func (s *servers) Horizon() follow.Order { return follow.Order(fmt.Sprint(s.horizon)) }

func Example() {
	src := &servers{
		rows:    []row{{id: 1, updated: 10}, {id: 2, updated: 20}, {id: 3, updated: 30, deleted: true}},
		changed: make(chan struct{}),
		horizon: 5,
	}
	h := endpoint.NewHandler(src, endpoint.Options{Finite: true})
	srv := httptest.NewServer(h)
	defer srv.Close()

	for _, path := range []string{"/servers/0", "/servers/20", "/servers?since=30", "/servers/4"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("GET %s: %s\n%s", path, resp.Status, body)
	}
	// Output:
	// GET /servers/0: 200 OK
	// {"id":1,"updated_at":10,"deleted_at":null}
	// {"id":2,"updated_at":20,"deleted_at":null}
	// GET /servers/20: 200 OK
	// {"id":2,"updated_at":20,"deleted_at":null}
	// {"id":3,"updated_at":30,"deleted_at":30}
	// GET /servers?since=30: 200 OK
	// {"id":3,"updated_at":30,"deleted_at":30}
	// GET /servers/4: 410 Gone
	// cursor 4 is older than this endpoint keeps (5): start again from 0
}
