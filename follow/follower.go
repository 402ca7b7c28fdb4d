package follow

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
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
	// is dropped.
	Since     Order
	SinceKeys []string
	Resync    bool // start with a full resync (PROTOCOL 5.4)

	Follow         bool          // keep following; otherwise Run returns once caught up
	Poll           time.Duration // between finite responses when following (1s)
	Idle           time.Duration // quiet time that means an endless response is caught up (2s)
	StallTimeout   time.Duration // no bytes for this long: reconnect (5m; negative: never)
	RetryFor       time.Duration // without Follow: give up after failing this long (1m)
	SkipBadRecords bool          // report bad records as events and go on, instead of failing
}

// Defaults for Config fields left zero.
const (
	DefaultPoll         = time.Second
	DefaultIdle         = 2 * time.Second
	DefaultStallTimeout = 5 * time.Minute
	DefaultRetryFor     = time.Minute
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
	EventQuiet                      // no input waits: a good moment to flush output
	EventRetry                      // a pass failed and will be retried; Event.Err, Event.Delay
	EventResync                     // a full resync starts; Event.Err says why (nil when asked for)
	EventBadRecord                  // a bad record was skipped (SkipBadRecords); Event.Err
)

// An Event is what a Follower tells its handler.
type Event struct {
	Kind     EventKind
	Record   *Record // valid only during the handler call
	Err      error
	Delay    time.Duration
	URL      string // redacted request URL
	Resynced bool   // EventCaughtUp: a full resync has just finished
	Previous Order  // EventCaughtUp after a resync: the cursor before it
}

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

var errStalled = errors.New("stalled")

// A Follower follows one endpoint. It is not safe for concurrent use; its
// handler runs on the goroutine that called Run.
type Follower struct {
	cfg    Config
	ep     *endpoint
	client *http.Client
	rnd    *rand.Rand

	cursor   []byte // greatest order value applied; nil before any
	kind     OrderKind
	atCursor keyset.Set // keys applied at exactly cursor -> hash of their bytes (0: unknown)
	floor    []byte     // the cursor the current request was made with

	resyncing bool
	previous  Order
	attempt   int
	alarm     *time.Timer
	alarmC    <-chan time.Time
}

// New checks cfg and returns a Follower.
func New(cfg Config) (*Follower, error) {
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = DefaultStallTimeout
	}
	if cfg.RetryFor <= 0 {
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
		f.cursor = []byte(cfg.Since)
		for _, k := range cfg.SinceKeys {
			f.atCursor.Put([]byte(k), KeyHash([]byte(k)), 0)
		}
	}
	if cfg.Resync {
		f.startResync()
	}
	return f, nil
}

// Endpoint is the endpoint's URL for display, credentials redacted.
func (f *Follower) Endpoint() string { return f.ep.display }

// Cursor returns the cursor and the keys applied at exactly it, for a
// checkpoint. During a resync it is the cursor from before the resync, the
// one that is safe to resume from.
func (f *Follower) Cursor() (Order, []string) {
	if f.resyncing {
		return f.previous, nil
	}
	keys := make([]string, 0, f.atCursor.Len())
	f.atCursor.Keys(func(k []byte) { keys = append(keys, string(k)) })
	return Order(f.cursor), keys
}

// Resyncing reports whether a full resync is under way.
func (f *Follower) Resyncing() bool { return f.resyncing }

// Alarm asks for an EventQuiet within d, even if no input arrives; a
// handler that defers work (a rate-limited write) uses it to come back.
func (f *Follower) Alarm(d time.Duration) {
	if f.alarm == nil {
		f.alarm = time.NewTimer(d)
		f.alarmC = f.alarm.C
		return
	}
	f.alarm.Reset(d)
	f.alarmC = f.alarm.C
}

func (f *Follower) startResync() {
	if !f.resyncing {
		f.previous = Order(f.cursor)
	}
	f.resyncing = true
	f.cursor = nil
	f.kind = KindNone
	f.atCursor.Reset()
}

// Run follows the endpoint, calling h for each event, until the context is
// cancelled (it returns ctx.Err()), h returns an error (returned as it is),
// a permanent error occurs (a *StatusError, ErrGone, a *BadRecordError
// without SkipBadRecords, or a request error), or, without Follow, the
// follower has caught up (nil) or has failed for longer than RetryFor.
func (f *Follower) Run(ctx context.Context, h func(Event) error) error {
	if f.resyncing {
		if err := h(Event{Kind: EventResync}); err != nil {
			return err
		}
	}
	var failingSince time.Time
	for {
		start := time.Now()
		p := &pass{f: f, h: h}
		err := p.run(ctx)
		if p.handlerErr != nil {
			return p.handlerErr
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p.records > 0 && time.Since(start) >= backoffReset {
			f.attempt = 0
		}
		if err == nil {
			failingSince = time.Time{}
			if p.caughtUp && !f.cfg.Follow && !f.resyncing {
				return nil
			}
			if err := f.sleep(ctx, h, f.cfg.Poll); err != nil {
				return err
			}
			continue
		}
		if p.records > 0 || p.caughtUp {
			failingSince = time.Time{}
		}
		var gone *goneError
		if errors.As(err, &gone) {
			f.attempt = 0
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
		if failingSince.IsZero() {
			failingSince = start
		}
		if !f.cfg.Follow && time.Since(failingSince)+delay > f.cfg.RetryFor {
			return fmt.Errorf("gave up after retrying for %s: %w", f.cfg.RetryFor, err)
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
	var se *StatusError
	if errors.As(err, &se) && se.Permanent() {
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

// sleep waits for d, the context, or the handler's alarm.
func (f *Follower) sleep(ctx context.Context, h func(Event) error, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		case <-f.alarmC:
			f.alarmC = nil
			if err := h(Event{Kind: EventQuiet}); err != nil {
				return err
			}
		}
	}
}

// accept applies the cursor rules (PROTOCOL 5.1) to a decoded record and
// reports whether it goes to the handler.
func (f *Follower) accept(r *Record) (bool, error) {
	k := kindOf(r.Order)
	if f.kind == KindNone {
		if ck := kindOf(f.cursor); ck != KindNone && ck != k {
			return false, f.kindError(r, ck)
		}
		f.kind = k
	} else if k != f.kind {
		return false, f.kindError(r, f.kind)
	}
	// An endpoint sends nothing below the cursor it was asked for; what it
	// does send there was covered by an earlier pass or run.
	if kindOf(f.floor) == k && compareOrder(r.Order, f.floor) < 0 {
		return false, nil
	}
	c := compareOrder(r.Order, f.cursor)
	if c < 0 {
		return true, nil
	}
	h := r.Hash()
	if c == 0 {
		if old, ok := f.atCursor.Get(r.Key, r.KeyHash()); ok && (old == 0 || old == h) {
			return false, nil
		}
	} else {
		f.cursor = append(f.cursor[:0], r.Order...)
		f.atCursor.Reset()
	}
	f.atCursor.Put(r.Key, r.KeyHash(), h)
	return true, nil
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
	records    int
	caughtUp   bool
	handlerErr error

	seen      int // records at the last wait
	idleSince time.Time
	idleSent  bool
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
	cursor := Order(f.cursor)
	f.floor = append(f.floor[:0], f.cursor...)
	req, err := f.ep.request(ctx, cursor)
	if err != nil {
		return permanentError{err}
	}
	display := f.ep.show(req.URL.String())
	resp, err := f.client.Do(req)
	if err != nil {
		return p.transportError(ctx, display, err)
	}
	defer resp.Body.Close()
	if err := f.checkStatus(resp, display, cursor); err != nil {
		return err
	}
	if err := p.emit(Event{Kind: EventConnected, URL: display}); err != nil {
		return err
	}
	in := startDecoding(resp.Body, stall, f.cfg.StallTimeout, f.cfg.Fields)
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
		for i := range b.recs {
			b.record(i, &rec)
			ok, err := f.accept(&rec)
			if err != nil {
				if err := p.badRecord(err); err != nil {
					return err
				}
				continue
			}
			if !ok {
				continue
			}
			p.records++
			if err := p.emit(Event{Kind: EventRecord, Record: &rec}); err != nil {
				return err
			}
		}
		err = b.err
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
			// A finite response ended cleanly: caught up (PROTOCOL 6.3).
			return p.caughtUpNow()
		case errors.Is(err, ErrTruncated):
			return fmt.Errorf("%s: %w", display, err)
		default:
			return p.readError(ctx, display, err)
		}
	}
}

func (p *pass) badRecord(err error) error {
	if !p.f.cfg.SkipBadRecords {
		return permanentError{err}
	}
	return p.emit(Event{Kind: EventBadRecord, Err: err})
}

func (p *pass) caughtUpNow() error {
	f := p.f
	ev := Event{Kind: EventCaughtUp}
	if f.resyncing {
		f.resyncing = false
		ev.Resynced, ev.Previous = true, f.previous
	}
	p.caughtUp = true
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
	if errors.As(err, &ue) || errors.As(err, &he) || errors.As(err, &ce) {
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
	se := StatusError{URL: display, Code: resp.StatusCode, Status: resp.Status, Body: string(body)}
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
