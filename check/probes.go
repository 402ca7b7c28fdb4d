package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lockstep/lockstep/follow"
)

// prober runs the probes. Its requests: first at cursor 0 (kept open to
// the end, to see whether it ends and whether heartbeats come), then twice
// at a cursor from the middle of that data, then at cursor 1.
type prober struct {
	opts     Options
	ctx      context.Context
	deadline time.Time
	results  []Result

	first    *response
	firstDec decoded
	mid      follow.Order
	since    [2]*response // at mid, twice
	sinceDec [2]decoded
	old      *response // at cursor 1
	oldDec   decoded

	mu   sync.Mutex
	busy []busy // 429s and 503s, in the order they came
}

// busy is a 429 or 503 answer: how long it asked to wait, and what check
// did about it.
type busy struct {
	cursor     follow.Order
	status     int
	retryAfter string        // the header as sent; "" when absent
	wait       time.Duration // what it asks for (1s without the header)
	waited     bool          // check waited and asked again
	then       int           // the status of the answer after the wait; 0 if none
	left       time.Duration // the time check had left, when it did not wait
}

// Waiting out a 429 or 503, as a follower does (PROTOCOL 3).
const (
	busyRetries    = 2           // at most, for each request
	busyDefault    = time.Second // without Retry-After
	retryAfterMax  = 5 * time.Minute
	busyShareOfRun = 2 // wait only when the wait is at most 1/busyShareOfRun of the time left
)

// oldCursor is sent to find a retention horizon: a cursor above 0 that is
// older than any real data's.
const oldCursor = follow.Order("1")

func (p *prober) add(probe string, s Status, seen, fix string, where *Where) {
	p.results = append(p.results, Result{Probe: probe, Status: s, Seen: seen, Fix: fix, Where: where})
}

// where points at offset in a response, with a snippet.
func where(r *response, body []byte, off int64) *Where {
	end := min(int64(len(body)), off+60)
	return &Where{URL: r.url, Offset: off, Snippet: string(body[off:end])}
}

func (p *prober) fields() follow.DecoderOptions {
	f := p.opts.Config.Fields
	for _, d := range []struct {
		name *string
		def  string
	}{{&f.Key, "id"}, {&f.OrderBy, "updated_at"}, {&f.Deleted, "deleted_at"}} {
		if *d.name == "" {
			*d.name = d.def
		}
	}
	return f
}

// get requests cursor and waits for its backlog. A 429 or 503 is waited
// out and asked again, when the time allows.
func (p *prober) get(cursor follow.Order) (*response, decoded) {
	r := fetch(p.ctx, p.opts.Config, cursor, p.opts.MaxBytes)
	for try := 0; try < busyRetries; try++ {
		i, again := p.waitOut(r)
		if !again {
			break
		}
		r = fetch(p.ctx, p.opts.Config, cursor, p.opts.MaxBytes)
		if r.err == nil {
			p.mu.Lock()
			p.busy[i].then = r.status
			p.mu.Unlock()
		}
	}
	if !r.ok() {
		// An error's body is short: wait a moment for it, for the report.
		select {
		case <-r.done:
		case <-p.ctx.Done():
		case <-time.After(p.opts.Config.Idle):
		}
		return r, decoded{truncated: -1}
	}
	r.settle(p.ctx, p.opts.Config.Idle, time.Until(p.deadline)/2, p.expects(cursor))
	s := r.snapshot()
	return r, decode(s.body, s.ended, p.opts.Config.Fields)
}

// expects reports whether a response at cursor should hold records: at
// cursor 0, or at one that records of cursor 0 reach. An open response
// that should is given time for its first record, so that a slow endpoint
// is not taken for one that sent nothing.
func (p *prober) expects(cursor follow.Order) bool {
	if cursor == "" {
		return true
	}
	for _, rec := range p.firstDec.records {
		if follow.CompareOrder([]byte(rec.order), []byte(cursor)) >= 0 {
			return true
		}
	}
	return false
}

// waitOut notes a 429 or 503 in p.busy[i] and, if its Retry-After (or a
// second, without one) fits in the time left, waits for it and reports
// again: the request is to be sent again.
func (p *prober) waitOut(r *response) (i int, again bool) {
	if r.err != nil || r.status != http.StatusTooManyRequests && r.status != http.StatusServiceUnavailable {
		return 0, false
	}
	b := busy{cursor: r.cursor, status: r.status, retryAfter: strings.TrimSpace(r.header.Get("Retry-After")), wait: busyDefault}
	if b.retryAfter != "" {
		b.wait = parseRetryAfter(b.retryAfter, time.Now())
	}
	left := time.Until(p.deadline)
	b.waited = b.wait <= left/busyShareOfRun
	if !b.waited {
		b.left = left
	}
	p.mu.Lock()
	i = len(p.busy)
	p.busy = append(p.busy, b)
	p.mu.Unlock()
	if !b.waited {
		return i, false
	}
	r.cancel()
	select {
	case <-p.ctx.Done():
		return i, false
	case <-time.After(b.wait):
		return i, true
	}
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date, capped at
// retryAfterMax; busyDefault when it is neither.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(max(0, min(n, int64(retryAfterMax/time.Second)))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, min(t.Sub(now), retryAfterMax))
	}
	return busyDefault
}

// probes names every probe, in the order of a report.
var probes = []string{"status", "content-type", "framing", "records", "fields", "order", "cursor", "inclusive", "tombstones",
	"agreement", "precision", "first-byte", "endless", "heartbeat", "gzip", "gone", "retry-after"}

func (p *prober) run() {
	p.first, p.firstDec = p.get("")
	defer p.first.cancel()
	if !p.probeStatus() {
		for _, probe := range probes[1 : len(probes)-1] {
			p.add(probe, Info, "not run: cursor 0 was not answered with records", "", nil)
		}
		p.probeRetryAfter()
		return
	}
	// The other requests run side by side: on an endless endpoint each
	// one takes the --idle wait for the end of its backlog.
	var wg sync.WaitGroup
	p.mid = p.middle()
	if p.mid != "" {
		for i := range p.since {
			wg.Go(func() {
				p.since[i], p.sinceDec[i] = p.get(p.mid)
				p.since[i].cancel()
			})
		}
	}
	wg.Go(func() {
		p.old, p.oldDec = p.get(oldCursor)
		p.old.cancel()
	})
	wg.Wait()

	p.probeContentType()
	p.probeFraming()
	p.probeRecords()
	p.probeFields()
	p.probeOrder()
	p.probeCursor()
	p.probeInclusive()
	p.probeTombstones()
	p.probeAgreement()
	p.probePrecision()
	p.probeFirstByte()
	p.probeEndless() // and heartbeat
	p.probeGzip()
	p.probeGone()
	p.probeRetryAfter()
}

// probeStatus: cursor 0 answers 2xx. Without that no other probe can run,
// and it returns false.
func (p *prober) probeStatus() bool {
	r := p.first
	fix := ""
	switch {
	case r.err != nil && p.outOfTime(r.err):
		p.add("status", Warn, fmt.Sprintf("no response at cursor 0 within --timeout %s: nothing could be checked", round(p.opts.Timeout)),
			"run check with a longer --timeout: the endpoint is slow to answer (followers wait for it up to --stall-timeout, 5m)", nil)
	case r.err != nil && errors.Is(r.err, http.ErrSchemeMismatch) && strings.HasPrefix(p.opts.Config.URL, "http://"):
		p.add("status", Fail, "no response at cursor 0: redirected to https://, where the server speaks plain HTTP",
			"fix the endpoint's redirect: it sends followers to https:// on a server that does not speak it", nil)
	case r.err != nil:
		seen, fix := connectionAdvice(r.err)
		p.add("status", Fail, "no response at cursor 0: "+seen, fix, nil)
	case r.ok():
		s := r.snapshot()
		n := len(p.firstDec.records)
		seen := fmt.Sprintf("%d %s at cursor 0 (%s): %s", r.status, http.StatusText(r.status), r.url, count(n, "record", "records"))
		if n > 0 {
			// Not len(s.body): on an endless response, heartbeats come and go.
			seen += fmt.Sprintf(" through byte %d", p.firstDec.records[n-1].end)
		}
		if s.capped {
			seen += fmt.Sprintf(" (stopped reading at the %s-byte cap)", thousands(len(s.body)))
		}
		if n == 0 {
			p.add("status", Warn, seen, "add a few records: without data the cursor cannot be checked", nil)
		} else {
			p.add("status", Pass, seen, "", nil)
		}
		return true
	case r.status == http.StatusGone:
		fix = "410 means \"cursor too old\": cursor 0 (everything) must always be answered"
	case r.status == http.StatusNotFound:
		fix = "check the URL; the cursor goes in the last path segment unless --since-param or {since} says otherwise"
	case r.status == http.StatusUnauthorized || r.status == http.StatusForbidden:
		fix = "pass credentials: user:pass@ in the URL, --user, or -H"
	case r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable:
		fix = "the endpoint says it is busy: run check again when it is not, or with a --timeout that leaves room for its Retry-After"
	default:
		fix = "answer 200 with the records, one JSON object per line"
	}
	if r.err == nil {
		body := strings.TrimSpace(string(r.snapshot().body))
		seen := fmt.Sprintf("%d %s at cursor 0 (%s)", r.status, http.StatusText(r.status), r.url)
		if body != "" {
			seen += ": " + strconv.Quote(truncate(body, 120))
		}
		p.add("status", Fail, seen, fix, nil)
	}
	return false
}

// outOfTime reports whether a request failed only because check's own
// --timeout ran out: the endpoint is slow, not wrong.
func (p *prober) outOfTime(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || p.ctx.Err() != nil
}

// connectionAdvice says why a request got no response, and what fixes it.
func connectionAdvice(err error) (seen, fix string) {
	var host x509.HostnameError
	var authority x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &host):
		return fmt.Sprintf("the TLS certificate is for another host: %v", err),
			"use the host name the certificate was issued for in the URL, or have the endpoint present a certificate for this one"
	case errors.As(err, &authority), errors.As(err, &verify):
		return fmt.Sprintf("the TLS certificate is not trusted: %v", err), "pass --cacert FILE with the CA that issued it"
	case errors.Is(err, http.ErrSchemeMismatch):
		return "the server speaks plain HTTP, not HTTPS", "use http:// in the URL"
	}
	return err.Error(), "check the URL, and that the endpoint is up and reachable from here"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (p *prober) probeContentType() {
	ct := p.first.header.Get("Content-Type")
	media, _, _ := mime.ParseMediaType(ct)
	switch media {
	case "application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/json":
		p.add("content-type", Pass, "Content-Type: "+ct, "", nil)
	case "text/html":
		p.add("content-type", Fail, "Content-Type: "+ct+": a web page, not a lockstep stream", "point check at the endpoint itself, which answers application/x-ndjson", nil)
	case "":
		p.add("content-type", Warn, "no Content-Type", "send Content-Type: application/x-ndjson", nil)
	default:
		p.add("content-type", Warn, "Content-Type: "+ct, "send Content-Type: application/x-ndjson", nil)
	}
}

// probeFraming: what separates the objects, and whether the body ends
// inside one.
func (p *prober) probeFraming() {
	r, d := p.first, p.firstDec
	body := r.snapshot().body
	if d.truncated >= 0 {
		p.add("framing", Fail, fmt.Sprintf("the body ended inside a record at byte %d", d.truncated),
			"end a response only between records; a follower drops the partial one and asks again", where(r, body, d.truncated))
		return
	}
	var backToBack, noNewline []int64
	for i := 1; i < len(d.records); i++ {
		prev, cur := d.records[i-1], d.records[i]
		sep := body[prev.end:cur.offset]
		switch {
		case len(sep) == 0:
			backToBack = append(backToBack, cur.offset)
		case !strings.Contains(string(sep), "\n") && len(strings.TrimSpace(string(sep))) == 0:
			noNewline = append(noNewline, cur.offset)
		}
	}
	const fix = "write a newline (\\n) after each object"
	switch {
	case len(backToBack) > 0:
		off := backToBack[0] - 1
		p.add("framing", Warn, fmt.Sprintf("%s sent back to back with nothing between them, first at byte %d (accepted, but few clients read that)", count(len(backToBack), "object", "objects"), off), fix, where(r, body, off))
	case len(noNewline) > 0:
		p.add("framing", Warn, fmt.Sprintf("%s separated by spaces but no newline, first at byte %d", count(len(noNewline), "object", "objects"), noNewline[0]), fix, where(r, body, noNewline[0]))
	default:
		p.add("framing", Pass, "one object per line", "", nil)
	}
}

// probeRecords: everything is a record with its key and order fields.
func (p *prober) probeRecords() {
	r, d := p.first, p.firstDec
	if len(d.bad) == 0 {
		p.add("records", Pass, fmt.Sprintf("%s, each a JSON object with %q and %q", count(len(d.records), "record", "records"), p.fields().Key, p.fields().OrderBy), "", nil)
		return
	}
	b := d.bad[0]
	p.add("records", Fail, fmt.Sprintf("%s; the first at byte %d: %s", count(len(d.bad), "bad record", "bad records"), b.Offset, b.Reason),
		fmt.Sprintf("send one JSON object per record, each with %q (a number or string) and %q", p.fields().Key, p.fields().OrderBy),
		&Where{URL: r.url, Offset: b.Offset, Snippet: truncate(string(b.Snippet), 60)})
}

func kind(raw string) string {
	switch {
	case raw == "":
		return "absent"
	case raw == "null":
		return "null"
	case raw[0] == '"':
		return "string"
	case raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9':
		return "number"
	case raw == "true" || raw == "false":
		return "boolean"
	}
	return "object or array"
}

// probeFields: each field keeps one kind, and every record has a deleted
// field.
func (p *prober) probeFields() {
	r, d := p.first, p.firstDec
	body := r.snapshot().body
	f := p.fields()
	if len(d.records) == 0 {
		p.add("fields", Info, "not run: no records", "", nil)
		return
	}
	first := d.records[0]
	for _, rec := range d.records[1:] {
		if kind(rec.order) != kind(first.order) {
			p.add("fields", Fail, fmt.Sprintf("%q is a %s at byte %d but a %s at byte %d", f.OrderBy, kind(first.order), first.offset, kind(rec.order), rec.offset),
				fmt.Sprintf("send every %q as one kind: numbers, or strings of one fixed format", f.OrderBy), where(r, body, rec.offset))
			return
		}
	}
	for _, rec := range d.records[1:] {
		if kind(rec.key) != kind(first.key) {
			p.add("fields", Warn, fmt.Sprintf("%q is a %s at byte %d but a %s at byte %d: 123 and \"123\" are different keys", f.Key, kind(first.key), first.offset, kind(rec.key), rec.offset),
				fmt.Sprintf("send every %q as one kind", f.Key), where(r, body, rec.offset))
			return
		}
	}
	delKind := ""
	for _, rec := range d.records {
		k := kind(string(rec.delRaw))
		switch {
		case k == "absent":
			p.add("fields", Warn, fmt.Sprintf("the record at byte %d has no %q field (lockstep takes that as live)", rec.offset, f.Deleted),
				fmt.Sprintf("send %q in every record: null, or when it was deleted", f.Deleted), where(r, body, rec.offset))
			return
		case k == "null":
		case delKind == "":
			delKind = k
		case k != delKind:
			p.add("fields", Warn, fmt.Sprintf("%q is a %s in one record and a %s at byte %d", f.Deleted, delKind, k, rec.offset),
				fmt.Sprintf("send %q as null or one kind of value", f.Deleted), where(r, body, rec.offset))
			return
		}
	}
	p.add("fields", Pass, fmt.Sprintf("%q: %s, %q: %s, %q in every record", f.Key, kind(first.key), f.OrderBy, kind(first.order), f.Deleted), "", nil)
}

// probeOrder: records sorted by order value within each response.
func (p *prober) probeOrder() {
	for _, x := range []struct {
		r *response
		d decoded
	}{{p.first, p.firstDec}, {p.since[0], p.sinceDec[0]}} {
		if x.r == nil {
			continue
		}
		recs := x.d.records
		for i := 1; i < len(recs); i++ {
			if follow.CompareOrder([]byte(recs[i].order), []byte(recs[i-1].order)) < 0 {
				p.add("order", Fail, fmt.Sprintf("%s %s at byte %d comes after %s at byte %d (%s)", p.fields().OrderBy, recs[i].order, recs[i].offset, recs[i-1].order, recs[i-1].offset, x.r.url),
					fmt.Sprintf("sort each response by %s (ORDER BY %s)", p.fields().OrderBy, p.fields().OrderBy), where(x.r, x.r.snapshot().body, recs[i].offset))
				return
			}
		}
	}
	p.add("order", Pass, "sorted by "+p.fields().OrderBy, "", nil)
}

// middle picks a cursor with records below it, at it and (usually) above
// it: the median of the distinct order values seen at cursor 0.
func (p *prober) middle() follow.Order {
	var values []string
	for _, r := range p.firstDec.records {
		values = append(values, r.order)
	}
	slices.SortFunc(values, func(a, b string) int { return follow.CompareOrder([]byte(a), []byte(b)) })
	values = slices.CompactFunc(values, func(a, b string) bool { return follow.CompareOrder([]byte(a), []byte(b)) == 0 })
	if len(values) < 2 {
		return ""
	}
	return follow.Order(values[len(values)/2])
}

// notRun reports why the probes at the middle cursor could not run, or "".
func (p *prober) notRun(i int) string {
	r := p.since[i]
	switch {
	case p.mid == "":
		return "not run: fewer than two distinct order values at cursor 0"
	case r.err != nil && p.outOfTime(r.err):
		return fmt.Sprintf("not run: no response at cursor %s within --timeout %s", p.mid.Param(), round(p.opts.Timeout))
	case r.err != nil:
		return fmt.Sprintf("not run: no response at cursor %s: %v", p.mid.Param(), r.err)
	case !r.ok():
		return fmt.Sprintf("not run: cursor %s answered %d %s", p.mid.Param(), r.status, http.StatusText(r.status))
	}
	return ""
}

// probeCursor: nothing below the cursor comes back.
func (p *prober) probeCursor() {
	if why := p.notRun(0); why != "" {
		s, fix := Info, ""
		switch {
		case p.since[0] != nil && p.since[0].err != nil && p.outOfTime(p.since[0].err):
			s, fix = Warn, "run check with a longer --timeout: the endpoint is slow to answer"
		case p.mid != "":
			s, fix = Fail, "answer any cursor a follower sends; see --since-param and {since} for where it goes"
		}
		p.add("cursor", s, why, fix, nil)
		return
	}
	r, d := p.since[0], p.sinceDec[0]
	var below []record
	for _, rec := range d.records {
		if follow.CompareOrder([]byte(rec.order), []byte(p.mid)) < 0 {
			below = append(below, rec)
		}
	}
	if len(below) > 0 {
		p.add("cursor", Fail, fmt.Sprintf("cursor ignored: %s returned %s of %s below %s, the first at byte %d", r.url, thousands(len(below)), count(len(d.records), "record", "records"), p.mid.Param(), below[0].offset),
			fmt.Sprintf("return only records with %s >= the cursor", p.fields().OrderBy), where(r, r.snapshot().body, below[0].offset))
		return
	}
	p.add("cursor", Pass, fmt.Sprintf("%s returned nothing below %s", r.url, p.mid.Param()), "", nil)
}

// probeInclusive: every record of cursor 0 at or above the cursor comes
// back, the ones equal to it too (since is inclusive). What is missing
// says what is wrong: nothing at all (the changes after a cursor are
// lost, or only new ones are sent), records above the cursor (lost), or
// only those equal to it (since is exclusive).
func (p *prober) probeInclusive() {
	if why := p.notRun(0); why != "" {
		p.add("inclusive", Info, why, "", nil)
		return
	}
	r, d := p.since[0], p.sinceDec[0]
	f := p.fields()
	got := map[string]string{}
	var top string // with a capped response, only what it reached counts
	for _, rec := range d.records {
		if o, ok := got[rec.key]; !ok || follow.CompareOrder([]byte(rec.order), []byte(o)) > 0 {
			got[rec.key] = rec.order
		}
		top = rec.order
	}
	s := r.snapshot()
	atMid, expected := 0, 0
	var missAt, missAbove []record
	for _, rec := range p.firstDec.records {
		c := follow.CompareOrder([]byte(rec.order), []byte(p.mid))
		if c < 0 || s.capped && follow.CompareOrder([]byte(rec.order), []byte(top)) >= 0 {
			continue
		}
		expected++
		if c == 0 {
			atMid++
		}
		if o, ok := got[rec.key]; ok && follow.CompareOrder([]byte(o), []byte(rec.order)) >= 0 {
			continue
		}
		if c == 0 {
			missAt = append(missAt, rec)
		} else {
			missAbove = append(missAbove, rec)
		}
	}
	every := fmt.Sprintf("return every record with %s >= the cursor", f.OrderBy)
	switch {
	case len(missAt)+len(missAbove) == 0:
		p.add("inclusive", Pass, fmt.Sprintf("%s returned the records at %s (%s) and all those above", r.url, p.mid.Param(), thousands(atMid)), "", nil)
	case len(d.records) == 0 && s.ended:
		p.add("inclusive", Fail, fmt.Sprintf("%s answered no records, though cursor 0 has %s at or above %s: a follower at that cursor never gets them", r.url, count(expected, "record", "records"), p.mid.Param()),
			every+"; answer 410 Gone for a cursor older than the endpoint keeps", nil)
	case len(d.records) == 0:
		p.add("inclusive", Fail, fmt.Sprintf("%s sent no records in the %s watched (the response is still open), though cursor 0 has %s at or above %s: it sends only changes made after the request, or is slower than that to start",
			r.url, round(time.Since(r.sent)), count(expected, "record", "records"), p.mid.Param()),
			"first send the records since the cursor, at once, then keep the response open for new ones", nil)
	case len(missAbove) > 0:
		rec := missAbove[0]
		p.add("inclusive", Fail, fmt.Sprintf("%s left out %s of the records above the cursor, the first %s %s (%s %s, above the cursor): a follower at that cursor never gets them",
			r.url, thousands(len(missAbove)), f.Key, rec.key, f.OrderBy, rec.order), every, nil)
	default:
		p.add("inclusive", Fail, fmt.Sprintf("since is exclusive: %s left out %s %s, whose %s equals the cursor, and sent those above it", r.url, f.Key, missAt[0].key, f.OrderBy),
			fmt.Sprintf("return records with %s >= the cursor, not >: a follower re-reads the records at its cursor to catch those it has not seen", f.OrderBy), nil)
	}
}

// probeTombstones: deleted records are sent for a cursor above 0.
func (p *prober) probeTombstones() {
	tombs := func(d decoded) int {
		n := 0
		for _, r := range d.records {
			if r.deleted {
				n++
			}
		}
		return n
	}
	atZero := tombs(p.firstDec)
	for _, x := range []struct {
		r *response
		d decoded
	}{{p.since[0], p.sinceDec[0]}, {p.old, p.oldDec}} {
		if x.r != nil && x.r.ok() {
			if n := tombs(x.d); n > 0 {
				p.add("tombstones", Pass, fmt.Sprintf("%s at cursor %s (%s at cursor 0, where they may be left out)", count(n, "tombstone", "tombstones"), x.r.cursor.Param(), thousands(atZero)), "", nil)
				return
			}
		}
	}
	p.add("tombstones", Info, fmt.Sprintf("no tombstone at cursor %s or %s: nothing was deleted, or deletions are not sent", oldCursor.Param(), p.mid.Param()),
		fmt.Sprintf("send a deleted record with %s set (not null) to any cursor above 0", p.fields().Deleted), nil)
}

// probeAgreement: two reads at one cursor agree, apart from changes that
// arrived in between.
func (p *prober) probeAgreement() {
	for i := range p.since {
		if why := p.notRun(i); why != "" {
			p.add("agreement", Info, why, "", nil)
			return
		}
	}
	a, b := p.sinceDec[0], p.sinceDec[1]
	second := map[string]record{}
	var newest string
	for _, rec := range b.records {
		second[rec.key] = rec
	}
	for _, rec := range a.records {
		if follow.CompareOrder([]byte(rec.order), []byte(newest)) > 0 {
			newest = rec.order
		}
	}
	capped := p.since[0].snapshot().capped || p.since[1].snapshot().capped
	f := p.fields()
	for _, rec := range a.records {
		s, ok := second[rec.key]
		switch {
		case capped:
		case !ok:
			p.add("agreement", Fail, fmt.Sprintf("%s %s (%s %s) came in the first read at cursor %s and not in the second", f.Key, rec.key, f.OrderBy, rec.order, p.mid.Param()),
				"answer the same cursor with the same records; a change must come back with a greater order value", nil)
			return
		case follow.CompareOrder([]byte(s.order), []byte(rec.order)) < 0:
			p.add("agreement", Fail, fmt.Sprintf("%s %s went back from %s %s to %s between two reads", f.Key, rec.key, f.OrderBy, rec.order, s.order),
				"a record's order value must never go down", nil)
			return
		}
	}
	first := map[string]bool{}
	for _, rec := range a.records {
		first[rec.key+"\x00"+rec.order] = true
	}
	for _, rec := range b.records {
		if !first[rec.key+"\x00"+rec.order] && follow.CompareOrder([]byte(rec.order), []byte(newest)) < 0 {
			p.add("agreement", Fail, fmt.Sprintf("%s %s (%s %s) appeared in the second read, below %s already sent: a follower past it never sees it", f.Key, rec.key, f.OrderBy, rec.order, newest),
				"give each change an order value above every one already visible (assign it when the change commits)", where(p.since[1], p.since[1].snapshot().body, rec.offset))
			return
		}
	}
	p.add("agreement", Pass, fmt.Sprintf("two reads at cursor %s agree (%s and %s)", p.mid.Param(), thousands(len(a.records)), count(len(b.records), "record", "records")), "", nil)
}

// probePrecision: numbers that a float64 reader (JavaScript, jq) would
// round.
func (p *prober) probePrecision() {
	f := p.fields()
	for _, rec := range p.firstDec.records {
		for _, v := range []struct{ name, raw string }{{f.Key, rec.key}, {f.OrderBy, rec.order}, {f.Deleted, string(rec.delRaw)}} {
			if kind(v.raw) != "number" {
				continue
			}
			x, _ := strconv.ParseFloat(v.raw, 64)
			format := byte('g')
			if !strings.ContainsAny(v.raw, ".eE") {
				format = 'f' // an integer reads best as one
			}
			if back := strconv.FormatFloat(x, format, -1, 64); follow.CompareOrder([]byte(v.raw), []byte(back)) != 0 {
				p.add("precision", Warn, fmt.Sprintf("%s %s at byte %d reads as %s in a float64 (JavaScript, jq); lockstep keeps it exact", v.name, v.raw, rec.offset, back),
					"keep integers within 2^53, or send such values as strings", where(p.first, p.first.snapshot().body, rec.offset))
				return
			}
		}
	}
	p.add("precision", Pass, "every number survives a float64", "", nil)
}

func (p *prober) probeFirstByte() {
	s := p.first.snapshot()
	switch {
	case s.firstByte < 0:
		p.add("first-byte", Warn, "no byte arrived", "send the first records, or a blank line, at once", nil)
	case s.firstByte > 10*time.Second:
		p.add("first-byte", Warn, fmt.Sprintf("first byte after %s", round(s.firstByte)), "flush the first records sooner: clients and proxies give up on a silent response", nil)
	default:
		p.add("first-byte", Pass, fmt.Sprintf("first byte after %s", round(s.firstByte)), "", nil)
	}
}

// probeEndless says whether the response at cursor 0 ends, and, when it
// does not, watches it for heartbeats as long as the time allows.
func (p *prober) probeEndless() {
	r := p.first
	s := r.snapshot()
	if !s.ended && !s.capped && s.readErr == nil {
		margin := min(p.opts.Timeout/20, 500*time.Millisecond)
		r.watch(p.ctx, p.deadline.Add(-margin), p.opts.MaxSilence)
		s = r.snapshot()
	}
	n := len(p.firstDec.records)
	switch {
	case s.ended:
		p.add("endless", Pass, fmt.Sprintf("finite: the response ended after %s", count(n, "record", "records")), "", nil)
		p.add("heartbeat", Info, "not needed: the response is finite", "", nil)
		return
	case s.capped:
		p.add("endless", Info, fmt.Sprintf("unknown: reading stopped at the %s-byte cap", thousands(len(s.body))), "", nil)
		p.add("heartbeat", Info, "not run: reading stopped at the byte cap", "", nil)
		return
	case s.readErr != nil && p.ctx.Err() == nil:
		p.add("endless", Fail, fmt.Sprintf("the response failed after %s: %v", count(len(s.body), "byte", "bytes"), s.readErr),
			"end a response cleanly (the last chunk of a chunked body), or keep it open", nil)
		p.add("heartbeat", Info, "not run: the response failed", "", nil)
		return
	}
	p.add("endless", Pass, fmt.Sprintf("endless: still open after its %s", count(n, "record", "records")), "", nil)
	longest := max(s.gap, s.silent)
	switch {
	case longest > p.opts.MaxSilence:
		p.add("heartbeat", Fail, fmt.Sprintf("nothing sent for %s after the backlog", round(longest)),
			fmt.Sprintf("on an open response, send a blank line after %s of silence at most", p.opts.MaxSilence/2), nil)
	case s.gap > 0:
		p.add("heartbeat", Pass, fmt.Sprintf("something arrived after the backlog; longest silence %s", round(s.gap)), "", nil)
	default:
		p.add("heartbeat", Warn, fmt.Sprintf("nothing sent in the %s watched after the backlog (%s allowed)", round(s.silent), p.opts.MaxSilence),
			fmt.Sprintf("send a blank line after %s of silence; run check with a --timeout above %s to be sure", p.opts.MaxSilence/2, p.opts.MaxSilence), nil)
	}
}

func round(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

func (p *prober) probeGzip() {
	if p.first.gzipped || p.first.header.Get("Content-Encoding") == "gzip" {
		p.add("gzip", Info, "gzip: the response was compressed", "", nil)
		return
	}
	p.add("gzip", Info, "gzip: not used, though asked for (Accept-Encoding: gzip)", "compressing saves most of the bytes of JSON lines", nil)
}

func (p *prober) probeGone() {
	r := p.old
	switch {
	case r.err != nil:
		p.add("gone", Warn, fmt.Sprintf("no response at cursor %s: %v", oldCursor.Param(), r.err), "", nil)
	case r.status == http.StatusGone:
		p.add("gone", Info, fmt.Sprintf("cursor %s answered 410 Gone: a retention horizon; followers that old start again from 0", oldCursor.Param()), "", nil)
	case r.ok():
		p.add("gone", Info, fmt.Sprintf("cursor %s answered %d: no retention horizon (an endpoint that forgets tombstones answers 410 Gone below its horizon)", oldCursor.Param(), r.status), "", nil)
	default:
		p.add("gone", Warn, fmt.Sprintf("cursor %s answered %d %s", oldCursor.Param(), r.status, http.StatusText(r.status)),
			"answer any cursor with the changes since it, or 410 Gone when it is older than the endpoint keeps", nil)
	}
}

// probeRetryAfter reports how the endpoint said it was busy, if it did,
// and what check did about it: waited as asked and asked again, as a
// follower does, or not, when the wait was longer than the time left.
func (p *prober) probeRetryAfter() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.busy) == 0 {
		p.add("retry-after", Info, "not seen: no 429 or 503 was answered", "when busy, answer 429 or 503 with Retry-After: <seconds>", nil)
		return
	}
	b := p.busy[0]
	seen := fmt.Sprintf("cursor %s answered %d with Retry-After: %s", cursorText(b.cursor), b.status, b.retryAfter)
	if b.retryAfter == "" {
		seen = fmt.Sprintf("cursor %s answered %d without Retry-After", cursorText(b.cursor), b.status)
	}
	switch {
	case !b.waited:
		seen += fmt.Sprintf("; not waited: %s is more than check had time for (%s left of --timeout)", round(b.wait), round(b.left))
	case b.then != 0:
		seen += fmt.Sprintf("; waited %s and asked again, then %d", round(b.wait), b.then)
	default:
		seen += fmt.Sprintf("; waited %s and asked again, then no response", round(b.wait))
	}
	if n := len(p.busy); n > 1 {
		seen += fmt.Sprintf(" (%s in all)", count(n, "busy answer", "busy answers"))
	}
	if b.retryAfter == "" {
		p.add("retry-after", Warn, seen, "say when to come back: Retry-After: <seconds>", nil)
		return
	}
	p.add("retry-after", Info, seen, "", nil)
}

// cursorText shows a cursor: "" is 0.
func cursorText(c follow.Order) string {
	if c == "" {
		return "0"
	}
	return c.Param()
}
