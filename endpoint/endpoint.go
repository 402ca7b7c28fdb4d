// Package endpoint serves a table of records by the lockstep protocol: the
// records changed since a cursor (inclusive, sorted by order value,
// tombstones left out for cursor 0), then, unless finite, every change as
// it is appended, on an endless chunked response.
//
// It is the reference endpoint behind lockstep serve, and what the tests of
// lockstep and of programs that embed package follow point a follower at.
package endpoint

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lockstep/lockstep/follow"
)

// Options configure a Server.
type Options struct {
	Fields     follow.DecoderOptions
	SinceParam string        // query parameter holding the cursor (default "since"); else the last path segment
	Finite     bool          // end each response after the backlog
	Heartbeat  time.Duration // send a blank line after this much silence (0: never)
	Gzip       bool          // compress responses for clients that accept gzip
}

// A Server is an http.Handler holding a table. Changes appended with Append
// reach every open stream. It is safe for concurrent use.
type Server struct {
	opts Options

	mu      sync.Mutex
	log     []*change          // every change, in arrival order: log[i].seq == i
	byOrder []*change          // the same, by order value once sorted
	current map[string]*change // key -> its latest change
	sorted  bool               // byOrder is sorted
	kind    follow.OrderKind
	wake    chan struct{} // closed and replaced on every append
	closed  bool
}

type change struct {
	seq     int
	key     string
	order   []byte
	bytes   []byte
	deleted bool
	stale   bool // superseded by a later change of its key
}

// New returns an empty Server.
func New(opts Options) *Server {
	if opts.SinceParam == "" {
		opts.SinceParam = "since"
	}
	return &Server{opts: opts, current: map[string]*change{}, sorted: true, wake: make(chan struct{})}
}

// Append validates rec and adds it to the table: a live record replaces its
// key, a tombstone deletes it. A change whose order value is lower than its
// key's current one is kept in the stream (as a real endpoint might send it)
// but does not replace the key.
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
	c := &change{seq: len(s.log), key: string(r.Key), order: r.Order, bytes: r.Bytes, deleted: r.Deleted}
	if n := len(s.byOrder); n > 0 && follow.CompareOrder(c.order, s.byOrder[n-1].order) < 0 {
		s.sorted = false
	}
	s.log = append(s.log, c)
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

// Cursor reads the cursor of a request: the since parameter, else the last
// path segment; "" means cursor 0.
func (s *Server) Cursor(r *http.Request) (follow.Order, error) {
	p, ok := r.URL.Query()[s.opts.SinceParam]
	var raw string
	if ok && len(p) > 0 {
		raw = p[len(p)-1]
	} else {
		raw = r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	}
	if raw == "" || raw == "0" {
		return "", nil
	}
	s.mu.Lock()
	kind := s.kind
	s.mu.Unlock()
	if kind == follow.KindString {
		return follow.Order(strconv.Quote(raw)), nil
	}
	o := follow.ParseOrder(raw)
	if o.Kind() != follow.KindNumber && kind == follow.KindNumber {
		return "", fmt.Errorf("cursor %q is not a number", raw)
	}
	return o, nil
}

// backlog returns the current changes at or after since, in order-value
// order, and the sequence number that later changes start at.
func (s *Server) backlog(since follow.Order) ([]*change, int) {
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
		if c.stale || (c.deleted && since == "") {
			continue
		}
		out = append(out, c)
	}
	return out, len(s.log)
}

// since returns the changes with seq >= from, in arrival order, and a
// channel closed when more arrive.
func (s *Server) since(from int) ([]*change, int, <-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log[from:len(s.log):len(s.log)], len(s.log), s.wake, s.closed
}

// ServeHTTP answers a request by the protocol, finite or endless as
// Options says.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.Respond(w, r, s.opts.Finite) }

// Respond answers a request, ending after the backlog if finite.
func (s *Server) Respond(w http.ResponseWriter, r *http.Request, finite bool) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	since, err := s.Cursor(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	var out io.Writer = w
	if s.opts.Gzip && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		defer gz.Close()
		out = gz
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	flush := func() error {
		if err := bw.Flush(); err != nil {
			return err
		}
		if gz, ok := out.(*gzip.Writer); ok {
			if err := gz.Flush(); err != nil {
				return err
			}
		}
		return http.NewResponseController(w).Flush()
	}
	backlog, next := s.backlog(since)
	if r.Method == http.MethodHead {
		return
	}
	for _, c := range backlog {
		bw.Write(c.bytes)
		bw.WriteByte('\n')
	}
	if finite {
		bw.Flush()
		return
	}
	if flush() != nil {
		return
	}
	s.stream(r.Context(), bw, flush, since, next)
}

// stream sends appended changes until the client goes or the server closes.
// It returns when the request's context is done, as httptest.Server.Close
// requires of every handler.
func (s *Server) stream(ctx context.Context, bw *bufio.Writer, flush func() error, since follow.Order, next int) {
	var beat <-chan time.Time
	if s.opts.Heartbeat > 0 {
		t := time.NewTicker(s.opts.Heartbeat)
		defer t.Stop()
		beat = t.C
	}
	for {
		changes, n, wake, closed := s.since(next)
		next = n
		for _, c := range changes {
			if since != "" && follow.CompareOrder(c.order, []byte(since)) < 0 {
				continue
			}
			bw.Write(c.bytes)
			bw.WriteByte('\n')
		}
		if len(changes) > 0 && flush() != nil {
			return
		}
		if closed {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-beat:
			bw.WriteByte('\n')
			if flush() != nil {
				return
			}
		}
	}
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
