package follow

import (
	"context"
	"errors"
	"io"
	"time"
)

// chunkReader reads a response body on its own goroutine, so that the
// follower's goroutine can notice, while it waits, that the input went quiet
// (flush output), stayed quiet for Idle (caught up), or that the handler's
// alarm rang, and tell the handler on its own goroutine.
type chunkReader struct {
	ctx    context.Context
	p      *pass
	chunks chan chunk
	free   chan []byte
	done   chan struct{}
	cur    []byte
	curBuf []byte
	err    error

	seen      int // p.records at the last wait
	idleSince time.Time
	idleSent  bool
}

type chunk struct {
	b   []byte
	err error
}

const chunkSize = 64 << 10

// errDone ends a pass that has caught up when the follower is not following.
var errDone = errors.New("caught up")

func newChunkReader(ctx context.Context, body io.Reader, stall *time.Timer, stallTimeout time.Duration, p *pass) *chunkReader {
	c := &chunkReader{
		ctx:       ctx,
		p:         p,
		chunks:    make(chan chunk, 4),
		free:      make(chan []byte, 6),
		done:      make(chan struct{}),
		idleSince: time.Now(),
	}
	for range 6 {
		c.free <- make([]byte, chunkSize)
	}
	go func() {
		for {
			var buf []byte
			select {
			case buf = <-c.free:
			case <-c.done:
				return
			}
			n, err := body.Read(buf)
			if n > 0 && stall != nil {
				stall.Reset(stallTimeout)
			}
			select {
			case c.chunks <- chunk{buf[:n], err}:
			case <-c.done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return c
}

// stop ends the reading goroutine; the caller closes the body, which
// unblocks a Read in progress.
func (c *chunkReader) stop() { close(c.done) }

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.curBuf != nil {
			c.free <- c.curBuf[:cap(c.curBuf)]
			c.curBuf = nil
		}
		var ch chunk
		select {
		case ch = <-c.chunks:
		default:
			var err error
			if ch, err = c.wait(); err != nil {
				c.err = err
				return 0, err
			}
		}
		c.curBuf, c.cur = ch.b, ch.b
		if ch.err != nil {
			c.err = ch.err
		}
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	return n, nil
}

// wait blocks for the next chunk, telling the handler what happens meanwhile.
func (c *chunkReader) wait() (chunk, error) {
	f, p := c.p.f, c.p
	if p.records != c.seen {
		c.seen = p.records
		c.idleSince = time.Now()
		c.idleSent = false
	}
	if err := p.emit(Event{Kind: EventQuiet}); err != nil {
		return chunk{}, err
	}
	var idle <-chan time.Time
	if !c.idleSent {
		t := time.NewTimer(time.Until(c.idleSince.Add(f.cfg.Idle)))
		defer t.Stop()
		idle = t.C
	}
	for {
		select {
		case ch := <-c.chunks:
			return ch, nil
		case <-c.ctx.Done():
			return chunk{}, context.Cause(c.ctx)
		case <-idle:
			idle = nil
			c.idleSent = true
			if err := p.caughtUpNow(); err != nil {
				return chunk{}, err
			}
			if p.caughtUp && !f.cfg.Follow && !f.resyncing {
				return chunk{}, errDone
			}
		case <-f.alarmC:
			f.alarmC = nil
			if err := p.emit(Event{Kind: EventQuiet}); err != nil {
				return chunk{}, err
			}
		}
	}
}
