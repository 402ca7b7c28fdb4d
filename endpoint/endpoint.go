// Package endpoint turns any data source into a correct lockstep endpoint
// (docs/protocol.md). An author implements Source (the changes since a
// cursor, in order, and a way to wait for new ones) and serves it with a
// Handler, which does the protocol's part: the cursor in any of its styles,
// inclusive since, tombstones, finite or endless responses, heartbeats,
// gzip, and 410 Gone below a retention horizon.
//
// Server is a Source held in memory: the reference endpoint behind
// lockstep serve, and what the tests of lockstep and of programs that
// embed package follow point a follower at.
package endpoint

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lockstep/lockstep/follow"
)

// A Server is a Source held in memory, with its Handler: the table behind
// lockstep serve and package followtest. Changes appended with Append
// reach every open stream. It is safe for concurrent use.
type Server struct {
	opts Options

	mu      sync.Mutex
	byOrder []*change          // every change, by order value once sorted
	current map[string]*change // key -> its latest change
	sorted  bool               // byOrder is sorted
	kind    follow.OrderKind
	wake    chan struct{} // closed and replaced on every append
	closed  bool
}

type change struct {
	key     string
	order   []byte
	bytes   []byte
	deleted bool
	stale   bool // superseded by a later change of its key
}

// New returns an empty Server that answers requests as opts say.
func New(opts Options) *Server {
	return &Server{opts: opts, current: map[string]*change{}, sorted: true, wake: make(chan struct{})}
}

// Append validates rec and adds it to the table: a live record replaces its
// key, a tombstone deletes it. A change whose order value is lower than its
// key's current one is stale: it replaces nothing and is never sent.
func (s *Server) Append(rec []byte) error {
	r, err := follow.ParseRecord(append([]byte(nil), rec...), s.opts.Fields)
	if err != nil {
		return err
	}
	kind := follow.Order(r.Order).Kind()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kind == follow.KindNone {
		s.kind = kind
	} else if s.kind != kind {
		return fmt.Errorf("order value %s is a %s; this table's are %ss", r.Order, kind, s.kind)
	}
	c := &change{key: string(r.Key), order: r.Order, bytes: r.Bytes, deleted: r.Deleted}
	if n := len(s.byOrder); n > 0 && follow.CompareOrder(c.order, s.byOrder[n-1].order) < 0 {
		s.sorted = false
	}
	s.byOrder = append(s.byOrder, c)
	if old, ok := s.current[c.key]; ok {
		if follow.CompareOrder(c.order, old.order) < 0 {
			c.stale = true
		} else {
			old.stale = true
			s.current[c.key] = c
		}
	} else {
		s.current[c.key] = c
	}
	close(s.wake)
	s.wake = make(chan struct{})
	return nil
}

// Load appends every complete line of r, stopping at the first bad one, and
// returns how many bytes it consumed.
func (s *Server) Load(r io.Reader) (int64, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var off int64
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long := append([]byte(nil), b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = br.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		if err == io.EOF {
			// An unfinished last line may still be being written.
			return off, nil
		}
		if err != nil {
			return off, err
		}
		off += int64(len(b))
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		if err := s.Append(b); err != nil {
			return off, fmt.Errorf("line %d: %w", line, err)
		}
	}
}

// Len is the number of live records.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.current {
		if !c.deleted {
			n++
		}
	}
	return n
}

// Table returns the live records, sorted by key: what a replica of this
// endpoint must hold.
func (s *Server) Table() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out [][]byte
	for _, c := range s.current {
		if !c.deleted {
			out = append(out, c.bytes)
		}
	}
	slices.SortFunc(out, func(a, b []byte) int {
		ra, _ := follow.ParseRecord(a, s.opts.Fields)
		rb, _ := follow.ParseRecord(b, s.opts.Fields)
		if c := follow.CompareOrder(ra.Key, rb.Key); c != 0 {
			return c
		}
		return strings.Compare(string(ra.Key), string(rb.Key))
	})
	return out
}

// Close ends every open stream; later requests are answered finite.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.wake)
	}
}

// Changes implements Source: the latest change of each key at or after
// since, in order-value order.
func (s *Server) Changes(ctx context.Context, since follow.Order, fn func([]byte) error) error {
	return s.parsedChanges(ctx, since, func(rec, _ []byte, _ bool) error { return fn(rec) })
}

// parsedChanges is Changes with what Append parsed of each record.
func (s *Server) parsedChanges(ctx context.Context, since follow.Order, fn func(rec, order []byte, deleted bool) error) error {
	for _, c := range s.backlog(since) {
		if err := fn(c.bytes, c.order, c.deleted); err != nil {
			return err
		}
	}
	return nil
}

// Changed implements Source; it returns nil once the Server is closed.
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	return s.wake
}

// backlog returns the current changes at or after since, in order-value
// order.
func (s *Server) backlog(since follow.Order) []*change {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.sorted {
		slices.SortStableFunc(s.byOrder, func(a, b *change) int { return follow.CompareOrder(a.order, b.order) })
		s.sorted = true
	}
	start := 0
	if since != "" {
		sb := []byte(since)
		start, _ = slices.BinarySearchFunc(s.byOrder, sb, func(c *change, t []byte) int {
			if follow.CompareOrder(c.order, t) < 0 {
				return -1
			}
			return 1
		})
	}
	var out []*change
	for _, c := range s.byOrder[start:] {
		if !c.stale {
			out = append(out, c)
		}
	}
	return out
}

// ServeHTTP answers a request by the protocol, finite or endless as
// Options says.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.Respond(w, r, s.opts.Finite) }

// Respond answers a request as a Handler over s does, ending after the
// backlog if finite.
func (s *Server) Respond(w http.ResponseWriter, r *http.Request, finite bool) {
	opts := s.opts
	opts.Finite = finite
	s.mu.Lock()
	opts.Kind = s.kind
	s.mu.Unlock()
	NewHandler(s, opts).ServeHTTP(w, r)
}

// WatchFile appends the lines written to path from byte offset off on, as
// they are written (like tail -f), until ctx is done. A line that is not a
// valid record is reported through warn and skipped.
func WatchFile(ctx context.Context, path string, off int64, s *Server, warn func(error)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var partial []byte
	buf := make([]byte, 1<<20)
	for {
		n, err := f.ReadAt(buf, off)
		if n > 0 {
			off += int64(n)
			data := append(partial, buf[:n]...)
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				line := data[:i]
				data = data[i+1:]
				if len(bytes.TrimSpace(line)) == 0 {
					continue
				}
				if aerr := s.Append(line); aerr != nil {
					warn(fmt.Errorf("%s: appended line %q: %w", path, line[:min(len(line), 200)], aerr))
				}
			}
			partial = append([]byte(nil), data...)
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
}
