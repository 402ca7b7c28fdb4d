package follow

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lockstep/lockstep/internal/keyset"
)

// Config describes an endpoint and how to follow it. The zero values of the
// durations take the protocol's defaults.
type Config struct {
	URL        string      // the endpoint; may hold user:pass@ and a {since} template
	SinceParam string      // send the cursor as this query parameter
	User       string      // "user:pass" for Basic auth, instead of the URL's
	Header     http.Header // extra request headers
	Redact     []string    // more header and query parameter names whose values are never shown
	Fields     DecoderOptions
	Client     *http.Client // default: NewClient(TLSOptions{})

	// Since is the cursor to start from, and SinceKeys the keys already
	// applied at exactly that value (from a checkpoint), whose re-delivery
	// with the same bytes is dropped.
	Since     Order
	SinceKeys []CursorKey
	Resync    bool // start with a full resync (PROTOCOL 5.4)

	Follow bool          // keep following; otherwise Run returns once caught up
	Poll   time.Duration // between finite responses when following (1s)
	Idle   time.Duration // an endless response that changed nothing for this long is caught up (2s)
	// ResyncQuiet is the silence after which an endless response to a
	// full resync, or to cursor 0 before its first record, is taken as
	// complete (30s): long, so that
	// a slow or pausing endpoint is never mistaken for one that has nothing
	// more, which would sweep away records it still has.
	ResyncQuiet    time.Duration
	StallTimeout   time.Duration // no bytes for this long: reconnect (5m; negative: never)
	RetryFor       time.Duration // without Follow: give up after failing this long (1m; negative: at the first failure)
	SkipBadRecords bool          // report bad records as events and go on, instead of failing
	// Batches asks for an EventBatch before each batch of records, for a
	// handler that looks records up in bulk (a database).
	Batches bool
	// Tick is how often EventQuiet repeats while no input arrives (1s): a
	// handler that defers work by less (a commit due 200ms after the last)
	// shortens it, and has no timer of its own.
	Tick time.Duration
}

// A CursorKey is a key applied at exactly the cursor, with the Digest of
// that record's bytes.
type CursorKey struct {
	Key    string // JSON text
	Digest uint64 // 0: unknown, so any re-delivery is passed on
}

// Defaults for Config fields left zero.
const (
	DefaultPoll         = time.Second
	DefaultIdle         = 2 * time.Second
	DefaultResyncQuiet  = 30 * time.Second
	DefaultStallTimeout = 5 * time.Minute
	DefaultRetryFor     = time.Minute
	DefaultTick         = time.Second
)

// Backoff (PROTOCOL 6.2).
const (
	// backoffMin is short enough that a blip costs a user nothing they notice.
	backoffMin = 250 * time.Millisecond
	// backoffMax keeps a down endpoint at two requests a minute per follower,
	// so a fleet of followers cannot hammer it back down as it recovers.
	backoffMax = 30 * time.Second
	// backoffReset: only a connection that delivered records and stayed up
	// this long proves the endpoint healthy; one that sends a record and
	// drops must keep backing off.
	backoffReset = 10 * time.Second
	// retryAfterMax caps a server's Retry-After, so a typo there cannot park
	// a follower for a day.
	retryAfterMax = 5 * time.Minute
)

// EventKind says what an Event reports.
type EventKind int

const (
	EventConnected EventKind = iota // a 2xx response began; Event.URL
	EventRecord                     // a record to apply; Event.Record
	EventCaughtUp                   // the backlog is delivered (PROTOCOL 6.3); Event.Resynced
	EventQuiet                      // no input waits (and again every second while none does): a moment to flush or write
	EventRetry                      // a pass failed and will be retried; Event.Err, Event.Delay
	EventResync                     // a full resync starts; Event.Err says why (nil when asked for)
	EventBadRecord                  // a bad record was skipped (SkipBadRecords); Event.Err
	EventWarning                    // the endpoint breaks a rule, and following it may miss changes; Event.Err
	EventBatch                      // Config.Batches: the records about to be handed over (some may be dropped); Event.Batch
)

// An Event is what a Follower tells its handler.
type Event struct {
	Kind     EventKind
	Record   *Record // valid only during the handler call
	Err      error
	Delay    time.Duration
	URL      string   // redacted request URL
	Size     int64    // EventConnected: the response's length in bytes (Content-Length), or -1 if it is not known (an endless or compressed response)
	Resynced bool     // EventCaughtUp: a full resync has just finished
	Previous Order    // EventCaughtUp after a resync: the cursor before it
	Batch    []Record // EventBatch; valid only during the handler call, which must not change them (Digest and KeyHash cache into a record: call them on the handler's goroutine)
}

// Unchanged is what a handler returns for an EventRecord that changed
// nothing (a stale record or a duplicate): it is not an error, and it does
// not count as activity, so an endpoint that keeps re-sending old records
// still lets the follower catch up.
var Unchanged = errors.New("follow: record changed nothing")

// ErrGone is returned when the endpoint answers 410 Gone to cursor 0: a
// resync cannot help.
var ErrGone = errors.New("follow: cursor expired (410 Gone)")

// A StatusError is an HTTP status that stops the follower (or, for 5xx, 429
// and 410, a retry's reason).
type StatusError struct {
	URL    string // redacted
	Code   int
	Status string
	Body   string // the first 200 bytes
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s from %s", e.Status, e.URL)
	if b := strings.TrimSpace(e.Body); b != "" {
		s += ": " + strconv.Quote(b)
	}
	return s
}

// Permanent reports whether retrying cannot help (PROTOCOL 3).
func (e *StatusError) Permanent() bool {
	switch {
	case e.Code == http.StatusTooManyRequests || e.Code == http.StatusRequestTimeout:
		return false
	case e.Code >= 500:
		return false
	}
	return true
}

// A NotStreamError is a 2xx response whose body is plainly not a lockstep
// stream: an HTML page, or nothing but bad records. It stops a follower
// that is to finish; one that follows retries, as the page may be a
// passing maintenance notice.
type NotStreamError struct {
	URL    string // redacted
	Reason string
}

func (e *NotStreamError) Error() string {
	return fmt.Sprintf("%s: not a lockstep stream: %s", e.URL, e.Reason)
}

// A GiveUpError ends a follower that is to finish after it failed for
// longer than Config.RetryFor (or at once, when RetryFor is negative).
type GiveUpError struct {
	Spent    time.Duration // from the first failure to giving up
	Attempts int
	Err      error // the last failure
}

func (e *GiveUpError) Error() string {
	if e.Attempts <= 1 {
		return e.Err.Error()
	}
	spent := e.Spent.Round(100 * time.Millisecond)
	if e.Spent < time.Second {
		spent = e.Spent.Round(time.Millisecond)
	}
	return fmt.Sprintf("gave up after %d attempts in %s: %v", e.Attempts, spent, e.Err)
}

func (e *GiveUpError) Unwrap() error { return e.Err }

var errStalled = errors.New("stalled")

// A Follower follows one endpoint. It is not safe for concurrent use; its
// handler runs on the goroutine that called Run.
type Follower struct {
	cfg    Config
	ep     *endpoint
	client *http.Client
	rnd    *rand.Rand

	cursor   mark // greatest order value applied; empty before any
	kind     OrderKind
	atCursor keyset.Set // keys applied at exactly cursor -> Digest of their bytes (0: unknown)
	// The record that last moved the cursor, not yet in atCursor: its
	// digest is taken only when it is needed (another record arrives at
	// the cursor, the cursor is read, or its batch's bytes are about to be
	// reused), so that a load whose order values all differ takes none.
	newest    Record
	hasNewest bool

	floor mark // the cursor the current request was made with

	resyncing     bool
	resyncRecords int // records the current resync has delivered
	previous      Order
	attempt       int
	caughtUp      bool
	contact       atomic.Int64 // unix nanoseconds of the last byte or response from the endpoint
}

// New checks cfg and returns a Follower.
func New(cfg Config) (*Follower, error) {
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	if cfg.ResyncQuiet <= 0 {
		cfg.ResyncQuiet = DefaultResyncQuiet
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	if cfg.RetryFor == 0 {
		cfg.RetryFor = DefaultRetryFor
	}
	cfg.Fields = cfg.Fields.withDefaults()
	ep, err := newEndpoint(cfg.URL, cfg.SinceParam, cfg.User, cfg.Header, cfg.Redact)
	if err != nil {
		return nil, err
	}
	f := &Follower{cfg: cfg, ep: ep, client: cfg.Client, rnd: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	if f.client == nil {
		if f.client, err = NewClient(TLSOptions{}); err != nil {
			return nil, err
		}
	}
	f.client = ep.guard(f.client)
	if cfg.Since != "" {
		f.cursor.set([]byte(cfg.Since))
		for _, k := range cfg.SinceKeys {
			f.atCursor.Put([]byte(k.Key), KeyHash([]byte(k.Key)), k.Digest)
		}
	}
	if cfg.Resync {
		f.startResync()
	}
	return f, nil
}

// Endpoint is the endpoint's URL for display, credentials redacted.
func (f *Follower) Endpoint() string { return f.ep.display }

// EndpointID identifies the data set the endpoint serves: a digest of its
// whole URL without the userinfo and of the extra headers whose names do
// not look secret, so that ?part=eu and ?part=us, or -H 'X-Tenant: eu'
// and 'X-Tenant: us', differ while a rotated password or token does not,
// and no secret is kept in clear.
func (f *Follower) EndpointID() string {
	var names []string
	for name := range f.ep.header {
		if !SecretName(name, f.cfg.Redact...) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	id := f.ep.raw
	for _, name := range names {
		id += "\x00" + name + ": " + strings.Join(f.ep.header[name], ", ")
	}
	return EndpointID(id)
}

// EndpointID is Follower.EndpointID for a URL whose userinfo is removed,
// with no extra headers.
func EndpointID(rawURL string) string {
	sum := sha256.Sum256([]byte("lockstep endpoint\x00" + rawURL))
	return "sha256:" + hex.EncodeToString(sum[:16])
}

// Cursor returns the cursor and the keys applied at exactly it, for a
// checkpoint. During a resync it is the cursor from before the resync, the
// one that is safe to resume from. A record handed to the handler counts
// once the handler has returned: the cursor never runs ahead of what was
// applied. Call it from the handler, or once Run has returned: it may
// take the digest of the newest record.
func (f *Follower) Cursor() (Order, []CursorKey) {
	if f.resyncing {
		return f.previous, nil
	}
	f.settle()
	keys := make([]CursorKey, 0, f.atCursor.Len())
	f.atCursor.Each(func(k []byte, d uint64) { keys = append(keys, CursorKey{Key: string(k), Digest: d}) })
	return Order(f.cursor.text), keys
}

// Resyncing reports whether a full resync is under way.
func (f *Follower) Resyncing() bool { return f.resyncing }

// CaughtUp reports whether the follower has caught up and nothing has
// failed since: the replica is as fresh as the endpoint.
func (f *Follower) CaughtUp() bool { return f.caughtUp }

// LastContact is when the endpoint was last heard from: a response began
// or bytes (records or heartbeats) arrived. Zero before any.
func (f *Follower) LastContact() time.Time {
	if n := f.contact.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

func (f *Follower) touch() { f.contact.Store(time.Now().UnixNano()) }

func (f *Follower) startResync() {
	if !f.resyncing {
		f.previous = Order(f.cursor.text)
	}
	f.resyncing = true
	f.resyncRecords = 0
	f.caughtUp = false
	f.cursor = mark{}
	f.kind = KindNone
	f.atCursor.Reset()
	f.newest, f.hasNewest = Record{}, false
}

// Run follows the endpoint, calling h for each event, until the context is
// cancelled (it returns ctx.Err()), h returns an error (returned as it is;
// Unchanged is not an error), a permanent error occurs (a *StatusError,
// ErrGone, a *BadRecordError without SkipBadRecords, a *NotStreamError
// without Follow, or a request error), or, without Follow, the follower
// has caught up (nil) or has failed for longer than RetryFor (a
// *GiveUpError).
func (f *Follower) Run(ctx context.Context, h func(Event) error) error {
	if f.resyncing {
		if err := h(Event{Kind: EventResync}); err != nil {
			return err
		}
	}
	var failingSince time.Time
	attempts := 0
	for {
		start := time.Now()
		p := &pass{f: f, h: h, resync: f.resyncing}
		err := p.run(ctx)
		if p.handlerErr != nil {
			return p.handlerErr
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// A resync proves nothing until it has caught up: one cut off
		// mid-backlog again and again must back off, not download the
		// whole table in a loop.
		progress := p.caughtUp || p.records > 0 && !p.resync
		if progress && time.Since(start) >= backoffReset {
			f.attempt = 0
		}
		if err == nil {
			failingSince, attempts = time.Time{}, 0
			if p.caughtUp && !f.cfg.Follow && !f.resyncing {
				return nil
			}
			if err := f.sleep(ctx, h, f.cfg.Poll); err != nil {
				return err
			}
			continue
		}
		f.caughtUp = false
		if progress {
			failingSince, attempts = time.Time{}, 0
		}
		var gone *goneError
		if errors.As(err, &gone) && !f.resyncing {
			f.startResync()
			if err := h(Event{Kind: EventResync, Err: err}); err != nil {
				return err
			}
			continue
		}
		delay, transient := f.classify(err)
		if !transient {
			return err
		}
		if gone != nil {
			// 410 in the middle of a resync: start it again, after a delay.
			f.startResync()
		}
		if failingSince.IsZero() {
			failingSince = start
		}
		attempts++
		if !f.cfg.Follow {
			// The last retry comes at the end of RetryFor, not before it.
			left := f.cfg.RetryFor - time.Since(failingSince)
			if f.cfg.RetryFor < 0 || left <= 0 {
				return &GiveUpError{Spent: time.Since(failingSince), Attempts: attempts, Err: err}
			}
			var ra *retryAfterError
			// (Retry-After counts whole seconds, and the request itself
			// took some of the time: a second of slack.)
			if errors.As(err, &ra) && ra.after > left+time.Second {
				// Asking sooner than the endpoint said would only be
				// refused again (PROTOCOL 3): stop now, and say why.
				return &GiveUpError{Spent: time.Since(failingSince), Attempts: attempts,
					Err: fmt.Errorf("%w; it asks for %s before the next try (Retry-After), more than is left of the time to retry", err, ra.after)}
			}
			delay = min(delay, left)
		}
		if err := h(Event{Kind: EventRetry, Err: err, Delay: delay}); err != nil {
			return err
		}
		if err := f.sleep(ctx, h, delay); err != nil {
			return err
		}
	}
}

type goneError struct{ StatusError }

func (e *goneError) Unwrap() error { return &e.StatusError }

// classify chooses what follows a failed pass: the delay before the next,
// or false for an error no retry can fix.
func (f *Follower) classify(err error) (time.Duration, bool) {
	var gone *goneError
	var se *StatusError
	var ns *NotStreamError
	switch {
	case errors.As(err, &gone):
	case errors.As(err, &ns):
		if !f.cfg.Follow {
			return 0, false
		}
	case errors.As(err, &se) && se.Permanent():
		return 0, false
	}
	var ra *retryAfterError
	if errors.As(err, &ra) && ra.after > 0 {
		return ra.after, true
	}
	var bad *BadRecordError
	var perm permanentError
	if errors.As(err, &bad) || errors.As(err, &perm) || errors.Is(err, ErrGone) {
		return 0, false
	}
	ceiling := backoffMin << min(f.attempt, 20)
	if ceiling > backoffMax {
		ceiling = backoffMax
	}
	f.attempt++
	// Full jitter: a fleet that failed together must not retry together.
	return time.Duration(f.rnd.Int64N(int64(ceiling)) + 1), true
}

// permanentError marks an error that no retry can fix, without changing
// its message.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

type retryAfterError struct {
	StatusError
	after time.Duration
}

func (e *retryAfterError) Unwrap() error { return &e.StatusError }

// sleep waits for d or the context, telling the handler every Tick.
func (f *Follower) sleep(ctx context.Context, h func(Event) error, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(f.cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		case <-tick.C:
			if err := h(Event{Kind: EventQuiet}); err != nil {
				return err
			}
		}
	}
}

// accept applies the cursor rules (PROTOCOL 5.1) to a decoded record and
// reports whether it goes to the handler. It moves nothing: advance does,
// once the handler has applied the record.
func (f *Follower) accept(r *Record) (bool, error) {
	k := kindOf(r.Order)
	if f.kind == KindNone {
		if ck := kindOf(f.cursor.text); ck != KindNone && ck != k {
			return false, f.kindError(r, ck)
		}
		f.kind = k
	} else if k != f.kind {
		return false, f.kindError(r, f.kind)
	}
	// An endpoint sends nothing below the cursor it was asked for; what it
	// does send there was covered by an earlier pass or run.
	if kindOf(f.floor.text) == k && f.floor.vs(r) < 0 {
		return false, nil
	}
	if f.cursor.vs(r) == 0 {
		f.settle()
		if old, ok := f.atCursor.Get(r.Key, r.KeyHash()); ok && old == r.Digest() {
			return false, nil
		}
	}
	return true, nil
}

// advance moves the cursor past a record the handler has applied.
func (f *Follower) advance(r *Record) {
	c := f.cursor.vs(r)
	if c < 0 {
		return
	}
	if c > 0 {
		f.cursor.setTo(r)
		f.atCursor.Reset()
		f.newest, f.hasNewest = *r, true
		return
	}
	f.atCursor.Put(r.Key, r.KeyHash(), r.Digest()) // accept settled the newest
}

// settle puts the newest record in atCursor.
func (f *Follower) settle() {
	if f.hasNewest {
		f.atCursor.Put(f.newest.Key, f.newest.KeyHash(), f.newest.Digest())
		f.newest, f.hasNewest = Record{}, false
	}
}

func (f *Follower) kindError(r *Record, want OrderKind) error {
	return &BadRecordError{
		Endpoint: f.ep.display,
		Offset:   r.Offset,
		Reason:   fmt.Sprintf("%q is a %s, but this endpoint's order values are %ss", f.cfg.Fields.OrderBy, kindOf(r.Order), want),
		Snippet:  append([]byte(nil), r.Bytes[:min(len(r.Bytes), snippetLen)]...),
	}
}

// pass is one request and the reading of its response.
type pass struct {
	f          *Follower
	h          func(Event) error
	resync     bool // a resync was under way when the pass began
	records    int  // handed to the handler
	changed    int  // of those, the ones that changed something
	decoded    int  // every well-formed record, dropped or not
	bad        int
	caughtUp   bool
	handlerErr error
	display    string
	finite     bool // the response has a Content-Length: caught up only at its end

	batch      []Record
	last       mark // the previous record's order value, to notice disorder
	disorderly bool // warned already

	seen      int // changes at the last wait
	idleSince time.Time
}

func (p *pass) emit(ev Event) error {
	if p.handlerErr != nil {
		return p.handlerErr
	}
	p.handlerErr = p.h(ev)
	return p.handlerErr
}

func (p *pass) run(ctx context.Context) error {
	f := p.f
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var stall *time.Timer
	if f.cfg.StallTimeout > 0 {
		stall = time.AfterFunc(f.cfg.StallTimeout, func() { cancel(errStalled) })
		defer stall.Stop()
	}
	cursor := Order(f.cursor.text)
	f.floor.set(f.cursor.text)
	req, err := f.ep.request(ctx, cursor)
	if err != nil {
		return permanentError{err}
	}
	display := f.ep.show(req.URL.String())
	p.display = display
	resp, err := f.client.Do(req)
	if err != nil {
		return p.transportError(ctx, display, err)
	}
	defer resp.Body.Close()
	if err := f.checkStatus(resp, display, cursor); err != nil {
		return err
	}
	f.touch()
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" {
		return &NotStreamError{URL: display, Reason: "the response is an HTML page (Content-Type: text/html); is the URL right?"}
	}
	p.finite = resp.ContentLength >= 0
	if err := p.emit(Event{Kind: EventConnected, URL: display, Size: resp.ContentLength}); err != nil {
		return err
	}
	in := startDecoding(resp.Body, stall, f.cfg.StallTimeout, f.cfg.Fields, f.touch)
	defer in.stop()
	p.idleSince = time.Now()
	var rec Record
	for {
		b, err := p.next(ctx, in)
		if errors.Is(err, errDone) {
			return nil
		}
		if err != nil {
			if p.handlerErr != nil {
				return p.handlerErr
			}
			return p.readError(ctx, display, err)
		}
		if f.cfg.Batches && len(b.recs) > 0 {
			p.batch = p.batch[:0]
			for i := range b.recs {
				p.batch = append(p.batch, Record{})
				b.record(i, &p.batch[i])
			}
			if err := p.emit(Event{Kind: EventBatch, Batch: p.batch}); err != nil {
				return err
			}
			// The handler saw the batch, not changed it: hand on its
			// records rather than build them again.
			for i := range p.batch {
				if err := p.handle(&p.batch[i]); err != nil {
					return err
				}
			}
		} else {
			for i := range b.recs {
				b.record(i, &rec)
				if err := p.handle(&rec); err != nil {
					return err
				}
			}
		}
		err = b.err
		f.settle()
		in.recycle(b)
		var bad *BadRecordError
		switch {
		case err == nil:
		case errors.As(err, &bad):
			bad.Endpoint = display
			if err := p.badRecord(bad); err != nil {
				return err
			}
		case err == io.EOF:
			if err := p.notStream(); err != nil {
				return err
			}
			// A finite response ended cleanly: caught up (PROTOCOL 6.3).
			return p.caughtUpNow()
		case errors.Is(err, ErrTruncated):
			return fmt.Errorf("%s: %w", display, err)
		default:
			return p.readError(ctx, display, err)
		}
	}
}

// handle passes one decoded record on, if the cursor rules let it through,
// and advances the cursor once the handler has applied it.
func (p *pass) handle(rec *Record) error {
	f := p.f
	p.decoded++
	if err := p.checkOrder(rec); err != nil {
		return err
	}
	ok, err := f.accept(rec)
	if err != nil {
		return p.badRecord(err)
	}
	if !ok {
		return nil
	}
	p.records++
	if p.resync {
		f.resyncRecords++
	}
	err = p.emit(Event{Kind: EventRecord, Record: rec})
	if errors.Is(err, Unchanged) {
		p.handlerErr = nil
	} else if err != nil {
		return err
	} else {
		p.changed++
	}
	f.advance(rec)
	return nil
}

// checkOrder warns, once per response, of records that come out of order:
// a follower that resumes from its cursor misses those sent late.
func (p *pass) checkOrder(rec *Record) error {
	if p.disorderly {
		return nil
	}
	if len(p.last.text) > 0 && kindOf(p.last.text) == kindOf(rec.Order) && p.last.vs(rec) < 0 {
		p.disorderly = true
		return p.emit(Event{Kind: EventWarning, Err: fmt.Errorf(
			"%s sends records out of order (%s %s after %s at byte %d); resuming from the cursor may miss changes sent late: fix the endpoint to sort by %s",
			p.display, p.f.cfg.Fields.OrderBy, rec.Order, p.last.text, rec.Offset, p.f.cfg.Fields.OrderBy)})
	}
	p.last.setTo(rec)
	return nil
}

func (p *pass) badRecord(err error) error {
	p.bad++
	var bad *BadRecordError
	if errors.As(err, &bad) {
		bad.Snippet = []byte(p.f.ep.scrub(string(bad.Snippet)))
	}
	if !p.f.cfg.SkipBadRecords {
		return permanentError{err}
	}
	return p.emit(Event{Kind: EventBadRecord, Err: err})
}

// notStream fails a response that held bad records and nothing else.
func (p *pass) notStream() error {
	if p.bad == 0 || p.decoded > 0 {
		return nil
	}
	return &NotStreamError{URL: p.display, Reason: fmt.Sprintf("%d bad records and no good one", p.bad)}
}

func (p *pass) caughtUpNow() error {
	f := p.f
	ev := Event{Kind: EventCaughtUp}
	if f.resyncing {
		f.resyncing = false
		ev.Resynced, ev.Previous = true, f.previous
	}
	p.caughtUp, f.caughtUp = true, true
	return p.emit(ev)
}

func (p *pass) transportError(ctx context.Context, display string, err error) error {
	if context.Cause(ctx) == errStalled {
		return fmt.Errorf("%s: no response for %s; reconnecting", display, p.f.cfg.StallTimeout)
	}
	err = unwrapURLError(err)
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce *tls.CertificateVerificationError
	switch {
	case errors.Is(err, http.ErrSchemeMismatch):
		// No retry can fix these: fail at once, even in a finishing command.
		if strings.HasPrefix(display, "http://") {
			return permanentError{fmt.Errorf("%s: redirected to https://, where the server speaks plain HTTP: the endpoint's redirect is wrong", display)}
		}
		return permanentError{fmt.Errorf("%s: the server speaks plain HTTP, not HTTPS: use http://", display)}
	case errors.As(err, &he):
		return permanentError{fmt.Errorf("%s: TLS certificate is for another host: %v (is the host name in the URL right?)", display, err)}
	case errors.As(err, &ue) || errors.As(err, &ce):
		return fmt.Errorf("%s: TLS certificate not trusted: %v (pass --cacert FILE to trust its CA)", display, err)
	}
	var redirect *RedirectError
	if errors.As(err, &redirect) {
		return permanentError{fmt.Errorf("%s: %w", display, err)}
	}
	return fmt.Errorf("%s: %w", display, err)
}

func (p *pass) readError(ctx context.Context, display string, err error) error {
	if context.Cause(ctx) == errStalled {
		return fmt.Errorf("%s: no data for %s; reconnecting", display, p.f.cfg.StallTimeout)
	}
	return fmt.Errorf("%s: %w", display, err)
}

func (f *Follower) checkStatus(resp *http.Response, display string, cursor Order) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, snippetLen))
	se := StatusError{URL: display, Code: resp.StatusCode, Status: resp.Status, Body: f.ep.scrub(string(body))}
	switch resp.StatusCode {
	case http.StatusGone:
		if cursor == "" {
			return fmt.Errorf("%w: %s answered 410 Gone to cursor 0", ErrGone, display)
		}
		return &goneError{se}
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return &retryAfterError{StatusError: se, after: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	return &se
}

// parseRetryAfter reads seconds or an HTTP date; 0 means absent or unusable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		d = time.Duration(min(n, int64(retryAfterMax/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0
	}
	if d <= 0 {
		// "Now" or a date in the past: retry, but never in a tight loop.
		return backoffMin
	}
	return min(d, retryAfterMax)
}
