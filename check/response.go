package check

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/lockstep/lockstep/follow"
)

// A response is one GET at a cursor, read in the background up to a byte
// cap, with when each piece arrived.
type response struct {
	cursor  follow.Order
	url     string // display: credentials redacted
	err     error  // the request failed (no response)
	status  int
	header  http.Header
	gzipped bool // the transport undid a Content-Encoding: gzip
	sent    time.Time
	cancel  context.CancelFunc

	mu        sync.Mutex
	body      []byte
	firstByte time.Duration // after sent; -1 until a byte arrives
	hasData   bool          // a non-whitespace byte has arrived
	lastData  time.Time     // when the last one did
	lastByte  time.Time     // when any byte last arrived (heartbeats too)
	gap       time.Duration // the longest silence since settle was called
	watching  bool          // gap is being measured
	ended     bool          // the body ended cleanly
	capped    bool          // reading stopped at the byte cap
	readErr   error         // the body failed before it ended
	done      chan struct{} // closed when reading stops
}

// fetch sends the request for cursor and starts reading its body. The
// response is read until it ends, fails, reaches maxBytes or ctx is done.
func fetch(ctx context.Context, cfg follow.Config, cursor follow.Order, maxBytes int64) *response {
	ctx, cancel := context.WithCancel(ctx)
	r := &response{cursor: cursor, cancel: cancel, firstByte: -1, done: make(chan struct{})}
	req, client, display, err := follow.NewRequest(ctx, cfg, cursor)
	if err != nil {
		r.err = err
		close(r.done)
		return r
	}
	r.url = display
	r.sent = time.Now()
	resp, err := client.Do(req)
	if err != nil {
		// Not the *url.Error itself: its URL may carry a secret query
		// parameter.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		r.err = err
		close(r.done)
		return r
	}
	r.status, r.header, r.gzipped = resp.StatusCode, resp.Header, resp.Uncompressed
	r.lastData, r.lastByte = time.Now(), time.Now()
	go r.read(resp.Body, maxBytes)
	return r
}

func (r *response) read(body io.ReadCloser, maxBytes int64) {
	defer close(r.done)
	defer body.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		now := time.Now()
		r.mu.Lock()
		if n > 0 {
			if r.firstByte < 0 {
				r.firstByte = now.Sub(r.sent)
			}
			if r.watching {
				r.gap = max(r.gap, now.Sub(r.lastByte))
			}
			r.lastByte = now
			if len(bytes.TrimSpace(buf[:n])) > 0 {
				r.hasData, r.lastData = true, now
			}
			keep := min(int64(n), maxBytes-int64(len(r.body)))
			r.body = append(r.body, buf[:keep]...)
			r.capped = int64(len(r.body)) >= maxBytes
		}
		switch {
		case errors.Is(err, io.EOF):
			r.ended = true
		case err != nil:
			r.readErr = err
		}
		stop := err != nil || r.capped
		r.mu.Unlock()
		if stop {
			return
		}
	}
}

// ok reports a 2xx response.
func (r *response) ok() bool { return r.err == nil && r.status >= 200 && r.status < 300 }

// settle waits until the response has delivered its backlog: it ended,
// failed or reached the cap, or no record byte has arrived for idle (and,
// when records are expected, one has arrived or firstWait has passed).
// Then it starts measuring silences, for the heartbeat probe.
func (r *response) settle(ctx context.Context, idle, firstWait time.Duration, expected bool) {
	r.poll(ctx, min(idle/4+time.Millisecond, 50*time.Millisecond), func() bool {
		if (r.hasData || !expected || time.Since(r.sent) >= firstWait) && time.Since(r.lastData) >= idle {
			r.watching = true
			return true
		}
		return false
	})
}

// watch waits until something arrives after the backlog (a heartbeat or a
// record), or the response has been silent for longer than maxSilence, or
// until.
func (r *response) watch(ctx context.Context, until time.Time, maxSilence time.Duration) {
	r.poll(ctx, 10*time.Millisecond, func() bool {
		return r.gap > 0 || time.Since(r.lastByte) > maxSilence || !time.Now().Before(until)
	})
}

// poll calls done, under the lock, every interval until it returns true,
// reading stops, or ctx is done.
func (r *response) poll(ctx context.Context, interval time.Duration, done func() bool) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		r.mu.Lock()
		ok := done()
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// snapshot is what a response delivered so far.
type snapshot struct {
	body      []byte
	ended     bool
	capped    bool
	readErr   error
	firstByte time.Duration
	gap       time.Duration // longest silence measured after the backlog
	silent    time.Duration // since the last byte
}

func (r *response) snapshot() snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return snapshot{
		body: r.body[:len(r.body):len(r.body)], ended: r.ended, capped: r.capped, readErr: r.readErr,
		firstByte: r.firstByte, gap: r.gap, silent: time.Since(r.lastByte),
	}
}
