package follow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// The body of a response is decoded on a goroutine of its own, so that
// parsing and applying records use both cores of a small machine, and so
// that the follower's goroutine can notice, while it waits, that input went
// quiet (flush output), stayed quiet for Idle (caught up), or that the
// handler's alarm rang, and tell the handler on its own goroutine.

// A batch is records decoded together, copied out of the decoder's buffer.
type batch struct {
	buf  []byte
	recs []recPos
	err  error // after recs: a *BadRecordError (decoding goes on), or how the body ended (io.EOF when cleanly)
}

type recPos struct {
	start, end   uint32 // in buf
	kOff, kLen   uint32 // within the record
	oOff, oLen   uint32
	deleted      bool
	streamOffset int64
	// The key's hash is taken here, off the applying goroutine. The
	// digest and the numbers (Record.KeyNumber) are not: this goroutine
	// sets the pace of a load whose keys grow, and moving either here made
	// tail slower in alternated runs.
	keyHash uint64
}

func (b *batch) record(i int, r *Record) {
	p := &b.recs[i]
	rec := b.buf[p.start:p.end:p.end]
	*r = Record{
		Bytes:   rec,
		Key:     rec[p.kOff : p.kOff+p.kLen],
		Order:   rec[p.oOff : p.oOff+p.oLen],
		Deleted: p.deleted,
		Offset:  p.streamOffset,
		keyHash: p.keyHash,
	}
}

const (
	batchBytes   = 256 << 10
	batchesAhead = 4
)

// errDone ends a pass that has caught up when the follower is not following.
var errDone = errors.New("caught up")

type decoding struct {
	batches chan *batch
	free    chan *batch
	done    chan struct{}
	partial atomic.Bool // waiting for input in the middle of a record
}

// startDecoding decodes body on a new goroutine until it ends or stop.
// touch is called whenever bytes arrive.
func startDecoding(body io.Reader, stall *time.Timer, stallTimeout time.Duration, opts DecoderOptions, touch func()) *decoding {
	d := &decoding{
		batches: make(chan *batch, batchesAhead),
		free:    make(chan *batch, batchesAhead+1),
		done:    make(chan struct{}),
	}
	for range batchesAhead + 1 {
		d.free <- &batch{buf: make([]byte, 0, batchBytes)}
	}
	go d.run(body, stall, stallTimeout, opts, touch)
	return d
}

// stop ends the goroutine; the caller closes the body, which unblocks a
// Read in progress.
func (d *decoding) stop() { close(d.done) }

func (d *decoding) recycle(b *batch) {
	b.buf, b.recs, b.err = b.buf[:0], b.recs[:0], nil
	d.free <- b
}

func (d *decoding) run(body io.Reader, stall *time.Timer, stallTimeout time.Duration, opts DecoderOptions, touch func()) {
	var cur *batch
	get := func() bool {
		if cur != nil {
			return true
		}
		select {
		case cur = <-d.free:
			return true
		case <-d.done:
			return false
		}
	}
	send := func() bool {
		select {
		case d.batches <- cur:
			cur = nil
			return true
		case <-d.done:
			return false
		}
	}
	// Before every read from the network, hand over what is decoded: the
	// read may block, and those records must not wait for it.
	var dec *Decoder
	r := &flushingReader{r: body, before: func() bool {
		d.partial.Store(dec.partial())
		if cur != nil && len(cur.recs) > 0 {
			return send()
		}
		return true
	}, after: func(n int) {
		if n > 0 {
			touch()
			if stall != nil {
				stall.Reset(stallTimeout)
			}
		}
	}}
	dec = NewDecoder(r, opts)
	for {
		if !get() {
			return
		}
		for dec.Next() {
			// The read inside Next may have handed cur over.
			if !get() {
				return
			}
			rec := dec.Record()
			start := len(cur.buf)
			cur.buf = append(cur.buf, rec.Bytes...)
			cur.recs = append(cur.recs, recPos{
				start: uint32(start), end: uint32(len(cur.buf)),
				kOff: uint32(offsetIn(rec.Bytes, rec.Key)), kLen: uint32(len(rec.Key)),
				oOff: uint32(offsetIn(rec.Bytes, rec.Order)), oLen: uint32(len(rec.Order)),
				deleted: rec.Deleted, streamOffset: rec.Offset,
				keyHash: rec.KeyHash(),
			})
			if len(cur.buf) >= batchBytes {
				if !send() || !get() {
					return
				}
			}
		}
		if r.stopped || !get() {
			return
		}
		err := dec.Err()
		var bad *BadRecordError
		isBad := errors.As(err, &bad)
		switch {
		case err == nil:
			cur.err = io.EOF
		case isBad, errors.Is(err, ErrTruncated):
			cur.err = err
		default:
			cur.err = fmt.Errorf("connection lost at byte %d: %w", dec.Offset(), err)
		}
		if !send() || !isBad {
			return
		}
	}
}

type flushingReader struct {
	r       io.Reader
	before  func() bool
	after   func(int)
	stopped bool
}

func (f *flushingReader) Read(p []byte) (int, error) {
	if !f.before() {
		f.stopped = true
		return 0, errStopped
	}
	n, err := f.r.Read(p)
	f.after(n)
	return n, err
}

var errStopped = errors.New("stopped")

// next returns the next batch, telling the handler what happens while it
// waits for one.
func (p *pass) next(ctx context.Context, d *decoding) (*batch, error) {
	select {
	case b := <-d.batches:
		return b, nil
	default:
	}
	f := p.f
	if p.changed != p.seen {
		p.seen = p.changed
		p.idleSince = time.Now()
	}
	if err := p.emit(Event{Kind: EventQuiet}); err != nil {
		return nil, err
	}
	var idle <-chan time.Time
	idleTimer := time.NewTimer(time.Until(p.idleSince.Add(p.quiet())))
	defer idleTimer.Stop()
	if !p.caughtUp && !p.finite {
		idle = idleTimer.C
	}
	tick := time.NewTicker(f.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case b := <-d.batches:
			return b, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-idle:
			if d.partial.Load() {
				// Half a record is no proof that nothing more is coming.
				p.idleSince = time.Now()
				idleTimer.Reset(p.quiet())
				continue
			}
			idle = nil
			if p.resync && f.resyncRecords == 0 {
				if !f.cfg.Follow {
					return nil, &NotStreamError{URL: p.display, Reason: fmt.Sprintf(
						"a full resync received no record in %s from an endless response, so nothing can be swept", f.cfg.ResyncQuiet)}
				}
				continue
			}
			if !f.cfg.Follow {
				if err := p.notStream(); err != nil {
					return nil, err
				}
			}
			if err := p.caughtUpNow(); err != nil {
				return nil, err
			}
			if !f.cfg.Follow && !f.resyncing {
				return nil, errDone
			}
		case <-tick.C:
			if err := p.emit(Event{Kind: EventQuiet}); err != nil {
				return nil, err
			}
		}
	}
}

// quiet is how long an endless response must change nothing to be caught
// up (PROTOCOL 6.3): Idle, or ResyncQuiet when a sweep depends on it or
// nothing at all has arrived for cursor 0.
func (p *pass) quiet() time.Duration {
	if p.resync || len(p.f.floor.text) == 0 && p.records == 0 {
		return p.f.cfg.ResyncQuiet
	}
	return p.f.cfg.Idle
}
