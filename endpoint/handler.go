package endpoint

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/lockstep/lockstep/follow"
)

// A Source is the data a Handler serves: the one thing an endpoint's author
// writes. Its methods are called concurrently, by every open request.
type Source interface {
	// Changes calls fn with the latest version of every record whose order
	// value is at or after since, tombstones included, sorted by order
	// value. The zero since means cursor 0: everything (tombstones may be
	// left out). Each record is one JSON object; fn does not keep it after
	// returning. Changes stops at the first error fn returns and returns it.
	Changes(ctx context.Context, since follow.Order, fn func(record []byte) error) error

	// Changed returns a channel that is closed once a change made after the
	// call is visible to Changes, or nil when the source will change no
	// more (then endless responses end).
	Changed() <-chan struct{}
}

// Retention is implemented by a Source that forgets tombstones: Horizon is
// the oldest cursor it can still answer completely (the zero Order: no
// horizon). A request for an older cursor is answered 410 Gone, which makes
// a follower start again from cursor 0.
type Retention interface {
	Horizon() follow.Order
}

// DefaultHeartbeat is the silence after which an endless response sends a
// blank line: half the 30 s a client may wait before it takes the
// connection for dead (docs/protocol.md).
const DefaultHeartbeat = 15 * time.Second

// Options configure a Handler.
type Options struct {
	Fields     follow.DecoderOptions // the key, order and deleted field names
	SinceParam string                // query parameter that carries the cursor (default "since"); else the last path segment
	// Kind is the kind of the source's order values, which decides how a
	// cursor is read: as a number (anything else is a 400), or as a
	// string's contents. KindNone: a cursor that looks like a number is one.
	Kind      follow.OrderKind
	Finite    bool          // end each response after the backlog
	Heartbeat time.Duration // blank line after this much silence when endless (0: DefaultHeartbeat; negative: never)
	Gzip      bool          // compress responses for clients that accept gzip
	ErrorLog  func(error)   // told when a Source fails or breaks its contract (default: the log package)
}

// A Handler answers lockstep requests from a Source: it reads the cursor
// (the SinceParam query parameter, else the last path segment; "" and "0"
// mean cursor 0), answers 410 Gone below a Retention horizon, sends the
// changes since the cursor (inclusive) one per line, leaving tombstones out
// at cursor 0, and then, unless Finite, keeps the response open and sends
// each new change once, with heartbeats in between.
//
// A Handler never sends a record out of order or below the cursor: records
// below it are dropped, and a Source that goes back in order, fails, or
// yields something that is not a record gets its response cut (not ended
// cleanly, so that the follower retries) and the error reported to
// ErrorLog.
type Handler struct {
	src  Source
	opts Options
}

// NewHandler returns a Handler serving src.
func NewHandler(src Source, opts Options) *Handler {
	if opts.SinceParam == "" {
		opts.SinceParam = "since"
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.ErrorLog == nil {
		opts.ErrorLog = func(err error) { log.Print(err) }
	}
	return &Handler{src: src, opts: opts}
}

// ServeHTTP answers GET and HEAD; other methods get 405, an unreadable
// cursor 400.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: a lockstep endpoint answers GET", http.StatusMethodNotAllowed)
		return
	}
	since, err := h.cursor(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if ret, ok := h.src.(Retention); ok && since != "" {
		if hz := ret.Horizon(); hz != "" && since.Compare(hz) < 0 {
			http.Error(w, fmt.Sprintf("cursor %s is older than this endpoint keeps (%s): start again from 0", since.Param(), hz.Param()), http.StatusGone)
			return
		}
	}
	s := &stream{h: h, w: w, gzip: h.opts.Gzip && acceptsGzip(r), since: since}
	if r.Method == http.MethodHead {
		s.start()
		return
	}
	defer s.close()
	ctx := r.Context()
	var wake <-chan struct{}
	if !h.opts.Finite {
		// Asked for before the query, so that a change made between the
		// two is not missed.
		wake = h.src.Changed()
	}
	if err := s.changes(ctx, since, since == ""); err != nil {
		s.fail(ctx, err)
		return
	}
	if wake == nil {
		return
	}
	if err := s.flush(); err != nil {
		return
	}
	s.follow(ctx, wake)
}

// cursor reads a request's cursor; the zero Order is cursor 0.
func (h *Handler) cursor(r *http.Request) (follow.Order, error) {
	var raw string
	if p := r.URL.Query()[h.opts.SinceParam]; len(p) > 0 {
		raw = p[len(p)-1]
	} else {
		raw = r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	}
	if raw == "" || raw == "0" {
		return "", nil
	}
	switch h.opts.Kind {
	case follow.KindString:
		b, _ := json.Marshal(raw)
		return follow.Order(b), nil
	case follow.KindNumber:
		if o := follow.ParseOrder(raw); o.Kind() == follow.KindNumber {
			return o, nil
		}
		return "", fmt.Errorf("cursor %q is not a number: send the last %s value received, or 0", raw, h.fields().OrderBy)
	}
	return follow.ParseOrder(raw), nil
}

func (h *Handler) fields() follow.DecoderOptions {
	f := h.opts.Fields
	if f.OrderBy == "" {
		f.OrderBy = "updated_at"
	}
	return f
}

func acceptsGzip(r *http.Request) bool {
	for _, e := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(e), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// stream is one response being written.
type stream struct {
	h     *Handler
	w     http.ResponseWriter
	gzip  bool
	since follow.Order

	started bool
	gz      *gzip.Writer
	bw      *bufio.Writer
	failed  bool
	sent    int                 // records written
	last    []byte              // the greatest order value sent
	first   []byte              // the first record sent at last
	atLast  map[uint64]struct{} // digests of the records sent at last, once there are two, whose re-delivery is dropped
}

// start sets the headers; nothing may be written to w before.
func (s *stream) start() {
	if s.started {
		return
	}
	s.started = true
	s.w.Header().Set("Content-Type", "application/x-ndjson")
	var out io.Writer = s.w
	if s.gzip {
		s.w.Header().Set("Content-Encoding", "gzip")
		s.w.Header().Add("Vary", "Accept-Encoding")
		s.gz = gzip.NewWriter(s.w)
		out = s.gz
	}
	s.bw = bufio.NewWriterSize(out, 256<<10)
}

// changes sends the Source's changes since the cursor. A Server's records
// were parsed when it stored them: served as itself (not embedded in a type
// that may override Changes) and with the same fields, they go out with
// what it parsed, not parsed again.
func (s *stream) changes(ctx context.Context, since follow.Order, omitTombstones bool) error {
	if srv, ok := s.h.src.(*Server); ok && srv.opts.Fields == s.h.opts.Fields {
		return srv.parsedChanges(ctx, since, func(rec, order []byte, deleted bool) error {
			return s.sendRecord(rec, order, deleted, omitTombstones)
		})
	}
	return s.h.src.Changes(ctx, since, func(rec []byte) error {
		r, err := follow.ParseRecord(rec, s.h.opts.Fields)
		if err != nil {
			return &contractError{fmt.Sprintf("%.200q is not a record: %v", rec, err)}
		}
		return s.sendRecord(r.Bytes, r.Order, r.Deleted, omitTombstones)
	})
}

// sendRecord writes one record, unless it is below the cursor, a
// tombstone left out at cursor 0, or already sent at the greatest order
// value so far.
func (s *stream) sendRecord(rec, order []byte, deleted, omitTombstones bool) error {
	if s.since != "" && follow.CompareOrder(order, []byte(s.since)) < 0 || omitTombstones && deleted {
		return nil
	}
	switch c := follow.CompareOrder(order, s.last); {
	case c < 0:
		return &contractError{fmt.Sprintf("order value %s came after %s: Changes must sort by order value", order, s.last)}
	case c > 0:
		// Most order values are sent once: the digests that tell a
		// re-delivery apart are only taken when a second record comes.
		s.last = append(s.last[:0], order...)
		s.first = append(s.first[:0], rec...)
		clear(s.atLast)
	default:
		if len(s.atLast) == 0 {
			if s.atLast == nil {
				s.atLast = map[uint64]struct{}{}
			}
			s.atLast[follow.Digest(s.first)] = struct{}{}
		}
		d := follow.Digest(rec)
		if _, dup := s.atLast[d]; dup {
			return nil
		}
		s.atLast[d] = struct{}{}
	}
	s.start()
	s.sent++
	s.bw.Write(rec)
	return s.bw.WriteByte('\n')
}

// flush sends what is buffered to the client now.
func (s *stream) flush() error {
	s.start()
	if err := s.bw.Flush(); err != nil {
		return err
	}
	if s.gz != nil {
		if err := s.gz.Flush(); err != nil {
			return err
		}
	}
	return http.NewResponseController(s.w).Flush()
}

// close ends a response that did not fail.
func (s *stream) close() {
	if s.failed {
		return
	}
	s.start()
	if s.bw.Flush() == nil && s.gz != nil {
		s.gz.Close()
	}
}

// follow sends each new change until the client goes or the Source
// changes no more, and a blank line after each Heartbeat of silence. It
// returns when the request's context is done, as httptest.Server.Close
// requires of every handler.
func (s *stream) follow(ctx context.Context, wake <-chan struct{}) {
	var beat <-chan time.Time
	var timer *time.Timer
	if s.h.opts.Heartbeat > 0 {
		timer = time.NewTimer(s.h.opts.Heartbeat)
		defer timer.Stop()
		beat = timer.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat:
			if s.bw.WriteByte('\n') != nil || s.flush() != nil {
				return
			}
			timer.Reset(s.h.opts.Heartbeat)
		case <-wake:
			wake = s.h.src.Changed()
			before := s.sent
			from := follow.Order(s.last)
			if from == "" {
				from = s.since
			}
			if err := s.changes(ctx, from, false); err != nil {
				s.fail(ctx, err)
				return
			}
			if s.sent > before && timer != nil {
				timer.Reset(s.h.opts.Heartbeat)
			}
			if s.flush() != nil || wake == nil {
				return
			}
		}
	}
}

// fail reports a Source's error and cuts the response, so that the client
// cannot take what it received for a complete answer.
func (s *stream) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // the client went away: not the Source's fault
	}
	s.h.opts.ErrorLog(fmt.Errorf("endpoint: %w", err))
	s.failed = true
	if !s.started {
		http.Error(s.w, "the endpoint's data source failed", http.StatusInternalServerError)
		return
	}
	panic(http.ErrAbortHandler)
}

// A contractError is a Source breaking its contract.
type contractError struct{ msg string }

func (e *contractError) Error() string { return "source broke its contract: " + e.msg }
