// Package followtest provides a lockstep endpoint for tests, in the spirit
// of net/http/httptest: an in-process server on 127.0.0.1 holding a table
// that the test changes while clients follow it, with faults that can be
// switched on per connection (drops, stalls, error statuses, garbage and
// hostile records, gzip, TLS).
package followtest

import (
	"bytes"
	"compress/gzip"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/lockstep/lockstep/endpoint"
	"github.com/lockstep/lockstep/follow"
)

// A Fault changes how one connection is answered. The zero Fault answers
// normally.
type Fault struct {
	// Status answers with this HTTP status and Body instead of records,
	// with a Retry-After header if RetryAfter is set.
	Status     int
	RetryAfter string
	Body       string

	// After is the number of records sent normally before the rest of the
	// fault applies: Inject, then Stall, then Drop or DropBytes.
	After     int
	Inject    []byte        // raw bytes to send: garbage, hostile or out-of-order records
	Stall     time.Duration // send nothing for this long (the client may give up first)
	Heartbeat time.Duration // while stalling, send a blank line this often
	Drop      bool          // then cut the connection
	DropBytes int           // or cut it after this many more bytes, mid-record or mid-chunk
	End       bool          // or end the response cleanly there (after a partial record: a truncated body)
	Finite    bool          // end the response after the backlog
}

func (f *Fault) active() bool {
	return len(f.Inject) > 0 || f.Stall > 0 || f.Drop || f.DropBytes > 0 || f.End
}

// Server is a running endpoint. Set fields before Start; Append, Faults and
// the other methods are safe for concurrent use.
type Server struct {
	URL string // base URL, e.g. http://127.0.0.1:41234; add a path such as /servers/

	Fields    follow.DecoderOptions
	Gzip      bool          // compress every response (clients that accept gzip)
	Finite    bool          // end every response after its backlog
	Heartbeat time.Duration // send a blank line after this much silence

	table *endpoint.Server
	hs    *httptest.Server

	mu       sync.Mutex
	faults   []Fault
	requests []string
}

// NewServer starts a server holding records (JSON lines).
func NewServer(records ...string) *Server {
	s := NewUnstartedServer(records...)
	s.Start()
	return s
}

// NewUnstartedServer returns a server that Start or StartTLS starts.
func NewUnstartedServer(records ...string) *Server {
	s := &Server{}
	s.hs = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.table = endpoint.New(endpoint.Options{})
	for _, r := range records {
		if err := s.table.Append([]byte(r)); err != nil {
			panic(fmt.Sprintf("followtest: %v", err))
		}
	}
	return s
}

// Start serves plain HTTP on 127.0.0.1.
func (s *Server) Start() {
	s.rebuild()
	s.hs.Start()
	s.URL = s.hs.URL
}

// StartTLS serves HTTPS with a self-signed certificate (see Certificate).
func (s *Server) StartTLS() {
	s.rebuild()
	s.hs.StartTLS()
	s.URL = s.hs.URL
}

// rebuild applies the options set after NewUnstartedServer.
func (s *Server) rebuild() {
	old := s.table.Table()
	s.table = endpoint.New(endpoint.Options{Fields: s.Fields, Heartbeat: s.Heartbeat})
	for _, r := range old {
		s.table.Append(r)
	}
}

// Client returns a client that trusts the TLS server's certificate.
func (s *Server) Client() *http.Client { return s.hs.Client() }

// CertificatePEM is the TLS server's certificate, for a --cacert file.
func (s *Server) CertificatePEM() []byte {
	c := s.hs.Certificate()
	if c == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// Append changes the table: a live record replaces its key, a tombstone
// deletes it. Open streams receive it.
func (s *Server) Append(records ...string) error {
	for _, r := range records {
		if err := s.table.Append([]byte(r)); err != nil {
			return err
		}
	}
	return nil
}

// Table is the live records sorted by key: what a replica must equal.
func (s *Server) Table() []string {
	var out []string
	for _, r := range s.table.Table() {
		out = append(out, string(r))
	}
	return out
}

// Faults queues faults for the next connections, one each, in order.
func (s *Server) Faults(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f...)
}

// Requests returns the request URIs received so far.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// DropConnections cuts every open connection, as a network failure would.
func (s *Server) DropConnections() { s.hs.CloseClientConnections() }

// Close ends every stream and shuts the server down.
func (s *Server) Close() {
	s.table.Close()
	s.hs.Close()
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.URL.RequestURI())
	var f Fault
	if len(s.faults) > 0 {
		f, s.faults = s.faults[0], s.faults[1:]
	}
	s.mu.Unlock()
	if f.Status != 0 {
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		body := f.Body
		if body == "" {
			body = http.StatusText(f.Status)
		}
		http.Error(w, body, f.Status)
		return
	}
	fw := &faultWriter{w: w, f: f, rc: http.NewResponseController(w), done: r.Context().Done()}
	if s.Gzip && bytes.Contains([]byte(r.Header.Get("Accept-Encoding")), []byte("gzip")) {
		w.Header().Set("Content-Encoding", "gzip")
		fw.gz = gzip.NewWriter(w)
	}
	s.table.Respond(fw, r, s.Finite || f.Finite)
	fw.finish()
}

// faultWriter passes the endpoint's output through, applying a fault at a
// record boundary.
type faultWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	gz      *gzip.Writer
	f       Fault
	done    <-chan struct{}
	records int
	applied bool
	dropped bool
	ended   bool
	left    int // bytes still to send before a DropBytes cut
}

func (fw *faultWriter) Header() http.Header { return fw.w.Header() }

func (fw *faultWriter) WriteHeader(code int) { fw.w.WriteHeader(code) }

func (fw *faultWriter) Flush() {
	if fw.gz != nil {
		fw.gz.Flush()
	}
	fw.rc.Flush()
}

func (fw *faultWriter) out(b []byte) error {
	if fw.dropped {
		return http.ErrAbortHandler
	}
	if fw.ended {
		return nil
	}
	if fw.applied && fw.f.DropBytes > 0 {
		if len(b) >= fw.left {
			fw.raw(b[:fw.left])
			fw.cut()
			return http.ErrAbortHandler
		}
		fw.left -= len(b)
	}
	return fw.raw(b)
}

func (fw *faultWriter) raw(b []byte) error {
	var err error
	if fw.gz != nil {
		_, err = fw.gz.Write(b)
	} else {
		_, err = fw.w.Write(b)
	}
	return err
}

func (fw *faultWriter) cut() {
	fw.Flush()
	fw.dropped = true
	if conn, _, err := fw.rc.Hijack(); err == nil {
		conn.Close()
	}
}

// Write splits the stream into records so that the fault lands between
// two of them.
func (fw *faultWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if !fw.applied && fw.records >= fw.f.After && fw.f.active() {
			if err := fw.apply(); err != nil {
				return 0, err
			}
			continue
		}
		if fw.applied {
			if err := fw.out(b); err != nil {
				return 0, err
			}
			return n, nil
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return n, fw.out(b)
		}
		if err := fw.out(b[:i+1]); err != nil {
			return 0, err
		}
		if len(bytes.TrimSpace(b[:i])) > 0 {
			fw.records++
		}
		b = b[i+1:]
	}
	return n, nil
}

// apply injects, stalls and drops, in that order.
func (fw *faultWriter) apply() error {
	f := fw.f
	fw.applied = true
	fw.left = f.DropBytes
	if len(f.Inject) > 0 {
		if err := fw.out(f.Inject); err != nil {
			return err
		}
	}
	fw.Flush()
	if f.Stall > 0 {
		end := time.NewTimer(f.Stall)
		defer end.Stop()
		var beat <-chan time.Time
		if f.Heartbeat > 0 {
			t := time.NewTicker(f.Heartbeat)
			defer t.Stop()
			beat = t.C
		}
	stall:
		for {
			select {
			case <-end.C:
				break stall
			case <-fw.done:
				return http.ErrAbortHandler
			case <-beat:
				fw.raw([]byte("\n"))
				fw.Flush()
			}
		}
	}
	if f.Drop {
		fw.cut()
		return http.ErrAbortHandler
	}
	fw.ended = f.End
	return nil
}

// finish runs a fault that the backlog was too short to reach.
func (fw *faultWriter) finish() {
	if !fw.applied && fw.f.active() && !fw.dropped {
		fw.apply()
	}
	if fw.gz != nil && !fw.dropped {
		fw.gz.Close()
	}
}
