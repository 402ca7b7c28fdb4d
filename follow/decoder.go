package follow

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"strconv"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/lockstep/lockstep/internal/plainint"
)

// A Record is one object from an endpoint. Its slices point into the
// decoder's buffer and stay valid only until the next call to Next: copy
// what you keep.
type Record struct {
	Bytes   []byte // the object exactly as received, surrounding whitespace trimmed
	Key     []byte // the key field's JSON text (123 and "123" are different keys)
	Order   []byte // the order field's JSON text
	Deleted bool   // the deleted field is present and not null
	Offset  int64  // where Bytes starts in the response body

	digest, keyHash  uint64 // 0 until computed
	keyNum, orderNum uint64 // see KeyNumber
	keyIs, orderIs   int8   // 1: Key (Order) is the number in keyNum (orderNum), -1: not one, 0: not yet known
}

var hashSeed = maphash.MakeSeed()

// Digest is a 64-bit digest of Bytes (XXH64, never 0), the same in every
// process and version, so that a checkpoint can tell a re-delivery at the
// cursor from an update with new bytes (PROTOCOL 5.1). It is computed once
// and kept in the record; a Follower takes it on the goroutine that applies
// the record, and only for records it keeps the digest of.
func (r *Record) Digest() uint64 {
	if r.digest == 0 {
		r.digest = Digest(r.Bytes)
	}
	return r.digest
}

// Digest is the digest Record.Digest computes for a record's bytes.
func Digest(b []byte) uint64 { return xxhash.Sum64(b) | 1 }

// KeyHash is a 64-bit hash of Key, equal for equal keys within one process
// and seeded at random, so that an endpoint cannot choose keys that
// collide in an index.
func (r *Record) KeyHash() uint64 {
	if r.keyHash == 0 {
		r.keyHash = maphash.Bytes(hashSeed, r.Key) | 1
	}
	return r.keyHash
}

// KeyNumber is the key's value if it is a plain integer below 10^19, as
// ids usually are (digits only: no sign, fraction, exponent or quotes),
// worked out once and kept in the record: a Follower compares, and a
// table stores, the number. Change Key and the record keeps the old one.
func (r *Record) KeyNumber() (uint64, bool) {
	if r.keyIs == 0 {
		r.keyNum, r.keyIs = number(r.Key)
	}
	return r.keyNum, r.keyIs > 0
}

// OrderNumber is KeyNumber for the order value.
func (r *Record) OrderNumber() (uint64, bool) {
	if r.orderIs == 0 {
		r.orderNum, r.orderIs = number(r.Order)
	}
	return r.orderNum, r.orderIs > 0
}

func number(s []byte) (uint64, int8) {
	if n, ok := plainint.Parse(s); ok {
		return n, 1
	}
	return 0, -1
}

// KeyHash hashes a key's JSON text as Record.KeyHash does.
func KeyHash(key []byte) uint64 { return maphash.Bytes(hashSeed, key) | 1 }

// DecoderOptions names the fields a Decoder extracts. Empty names take the
// protocol's defaults.
type DecoderOptions struct {
	Key           string // default "id"
	OrderBy       string // default "updated_at"
	Deleted       string // default "deleted_at"
	MaxRecordSize int    // default 16 MiB
}

// DefaultMaxRecordSize is the largest record accepted unless told otherwise.
const DefaultMaxRecordSize = 16 << 20

func (o DecoderOptions) withDefaults() DecoderOptions {
	if o.Key == "" {
		o.Key = "id"
	}
	if o.OrderBy == "" {
		o.OrderBy = "updated_at"
	}
	if o.Deleted == "" {
		o.Deleted = "deleted_at"
	}
	if o.MaxRecordSize <= 0 {
		o.MaxRecordSize = DefaultMaxRecordSize
	}
	return o
}

// ErrTruncated means the body ended inside a record. The part received is
// never taken for a record; a follower retries from its cursor.
var ErrTruncated = errors.New("follow: response ended mid-record")

// A BadRecordError describes input that is not a usable record: invalid
// JSON, a value that is not an object, a missing or ill-typed key or order
// field, or an object over the size limit.
type BadRecordError struct {
	Endpoint string // the endpoint, credentials redacted (set by Follower)
	Offset   int64  // byte offset in the response where the bad input starts
	Reason   string
	Snippet  []byte // up to 200 bytes of the input from Offset
}

func (e *BadRecordError) Error() string {
	where := "at byte " + strconv.FormatInt(e.Offset, 10)
	if e.Endpoint != "" {
		where += " of " + e.Endpoint
	}
	return fmt.Sprintf("bad record %s: %s: %s", where, e.Reason, strconv.Quote(string(e.Snippet)))
}

const snippetLen = 200

// A Decoder reads records from a stream of JSON objects, separated by any
// JSON whitespace or by nothing at all, across any read boundary. Its
// contract is bufio.Scanner's: call Next until it returns false, then Err.
//
// Err is sticky, with one exception: after a *BadRecordError the decoder has
// skipped the bad input (the whole value when its end can be found, else
// the rest of the line), and Next may be called again to go on.
type Decoder struct {
	r    io.Reader
	opts DecoderOptions
	buf  []byte
	pos  int   // start of unconsumed input in buf
	end  int   // end of valid data in buf
	base int64 // stream offset of buf[0]
	eof  bool
	err  error
	rec  Record

	started bool // a byte order mark has been looked for

	// Set when a bad record's rest must be thrown away before going on.
	skipping bool
	resuming bool   // skipping with resume, not bound
	resume   resume // where to go on after a bad value
	bound    boundary
	spans    fieldSpans // the names to find
	layout   layout     // the last record's
}

// NewDecoder returns a decoder reading from r.
func NewDecoder(r io.Reader, opts DecoderOptions) *Decoder {
	o := opts.withDefaults()
	d := &Decoder{r: r, opts: o, buf: make([]byte, 64<<10), spans: o.spans()}
	d.spans.layout = &d.layout
	return d
}

// Record returns the record found by the last successful Next.
func (d *Decoder) Record() *Record { return &d.rec }

// Err returns the error that stopped Next, or nil at a clean end of input.
func (d *Decoder) Err() error { return d.err }

// Offset is the number of bytes of input consumed so far.
func (d *Decoder) Offset() int64 { return d.base + int64(d.pos) }

// Next advances to the next record.
func (d *Decoder) Next() bool {
	if d.err != nil {
		var bad *BadRecordError
		if !errors.As(d.err, &bad) {
			return false
		}
		d.err = nil
	}
	if !d.started && !d.skipBOM() {
		return false
	}
	for {
		if d.skipping {
			if !d.skip() {
				return false
			}
			continue
		}
		for d.pos < d.end && isSpace(d.buf[d.pos]) {
			d.pos++
		}
		if d.pos == d.end {
			if d.eof {
				return false
			}
			if !d.fill() {
				return false
			}
			continue
		}
		if d.buf[d.pos] != '{' {
			d.bad(d.pos, "expected a JSON object, found "+quoteChar(d.buf[d.pos]))
			// An array is skipped whole; anything else up to the next '{'.
			d.resume = resume{from: d.base + int64(d.pos), anyBrace: d.buf[d.pos] != '['}
			d.skipping, d.resuming = true, true
			return false
		}
		ok, again := d.object()
		if again {
			continue
		}
		return ok
	}
}

// object decodes the object at d.pos. again means "more input was read, try
// the loop again".
func (d *Decoder) object() (ok, again bool) {
	start := d.pos
	spans := &d.spans
	spans.reset()
	b := d.buf[start:d.end]
	n, err := scanObject(b, 0, 1, spans)
	if err == errShort {
		if d.eof {
			d.err = fmt.Errorf("%w at byte %d (%d bytes of an unfinished record)", ErrTruncated, d.base+int64(start), d.end-start)
			return false, false
		}
		// Find the object's end cheaply before validating it again, so that
		// a large record arriving in small reads costs linear time.
		if !d.findEnd(start) {
			return false, false
		}
		return false, true
	}
	if err != nil {
		var se *syntaxError
		errors.As(err, &se)
		d.bad(start, fmt.Sprintf("%s at byte %d", se.msg, d.base+int64(start+se.off)))
		// With back-to-back framing the next object may follow on the same
		// line: go on after the bad one (see resume).
		d.resume = resume{from: d.base + int64(start+se.off)}
		d.pos = start
		d.skipping, d.resuming = true, true
		return false, false
	}
	d.pos = start + n
	if err := d.opts.record(&d.rec, b[:n], spans); err != nil {
		return d.bad(start, err.Error()), false
	}
	d.rec.Offset = d.base + int64(start)
	return true, false
}

// record checks the fields of a scanned object and fills in r.
func (o *DecoderOptions) record(r *Record, b []byte, spans *fieldSpans) error {
	if len(b) > o.MaxRecordSize {
		return fmt.Errorf("record of %d bytes is over the %d-byte limit", len(b), o.MaxRecordSize)
	}
	ks, os, ds := spans.start[0], spans.start[1], spans.start[2]
	switch {
	case ks < 0:
		return fmt.Errorf("no %q field", o.Key)
	case b[ks] != '"' && b[ks] != '-' && !isDigit(b[ks]):
		return fmt.Errorf("%q is not a number or string", o.Key)
	case os < 0:
		return fmt.Errorf("no %q field", o.OrderBy)
	case b[os] != '"' && b[os] != '-' && !isDigit(b[os]):
		return fmt.Errorf("%q is not a number or string", o.OrderBy)
	}
	*r = Record{
		Bytes:   b,
		Key:     b[ks:spans.end[0]],
		Order:   b[os:spans.end[1]],
		Deleted: ds >= 0 && b[ds] != 'n',
	}
	return nil
}

// ParseRecord parses b, which must hold exactly one object and nothing but
// whitespace around it, as a record. The record's slices point into b.
func ParseRecord(b []byte, opts DecoderOptions) (Record, error) {
	o := opts.withDefaults()
	spans := o.spans()
	return o.parse(b, &spans)
}

// A Parser parses records one at a time, as ParseRecord does, and keeps
// the last one's layout, as a Decoder does: the lines of a file whose
// records share one parse faster through one Parser. It is not safe for
// concurrent use.
type Parser struct {
	opts   DecoderOptions
	spans  fieldSpans
	layout layout
}

// NewParser returns a Parser of records with the given fields.
func NewParser(opts DecoderOptions) *Parser {
	p := &Parser{opts: opts.withDefaults()}
	p.spans = p.opts.spans()
	p.spans.layout = &p.layout
	return p
}

// Parse parses b as ParseRecord does.
func (p *Parser) Parse(b []byte) (Record, error) {
	p.spans.reset()
	return p.opts.parse(b, &p.spans)
}

func (o *DecoderOptions) parse(b []byte, spans *fieldSpans) (Record, error) {
	i := skipSpace(b, 0)
	if i == len(b) {
		return Record{}, errors.New("empty record")
	}
	if b[i] != '{' {
		return Record{}, fmt.Errorf("expected a JSON object, found %s", quoteChar(b[i]))
	}
	n, err := scanObject(b[i:], 0, 1, spans)
	if err == errShort {
		return Record{}, errors.New("unfinished JSON object")
	}
	if err != nil {
		var se *syntaxError
		errors.As(err, &se)
		return Record{}, fmt.Errorf("%s at byte %d", se.msg, i+se.off)
	}
	if j := skipSpace(b, i+n); j != len(b) {
		return Record{}, fmt.Errorf("unexpected %s after the object at byte %d", quoteChar(b[j]), j)
	}
	var r Record
	err = o.record(&r, b[i:i+n], spans)
	return r, err
}

func (o *DecoderOptions) spans() fieldSpans {
	return newFieldSpans([3]string{o.Key, o.OrderBy, o.Deleted})
}

// partial reports whether input has arrived that is not yet a whole
// record: a record is partly received, and a quiet moment is no proof of
// being caught up.
func (d *Decoder) partial() bool {
	if d.skipping {
		return true
	}
	for _, c := range d.buf[d.pos:d.end] {
		if !isSpace(c) {
			return true
		}
	}
	return false
}

// bom is the UTF-8 byte order mark, which some servers put before a body.
var bom = []byte{0xEF, 0xBB, 0xBF}

// skipBOM drops a byte order mark at the start of the input. It returns
// false when reading failed.
func (d *Decoder) skipBOM() bool {
	for d.end-d.pos < len(bom) && !d.eof {
		if !d.fill() && d.err != nil {
			return false
		}
	}
	if bytes.HasPrefix(d.buf[d.pos:d.end], bom) {
		d.pos += len(bom)
	}
	d.started = true
	return true
}

// findEnd reads until the object starting at start is complete (it may
// still be invalid), the input ends, or the object is over the size limit.
func (d *Decoder) findEnd(start int) bool {
	d.bound = boundary{}
	scanned := start
	for {
		if done, _ := d.bound.scan(d.buf[scanned:d.end]); done {
			return true
		}
		scanned = d.end
		if d.end-start > d.opts.MaxRecordSize {
			d.pos = start
			d.bad(start, fmt.Sprintf("record is over the %d-byte limit", d.opts.MaxRecordSize))
			// Throw the rest of this object away as it arrives, never holding it.
			d.skipping, d.resuming = true, false
			d.base += int64(d.end)
			d.pos, d.end = 0, 0
			return false
		}
		if d.eof {
			// Validation decides between a bad record and a truncated one.
			return true
		}
		off := scanned - d.pos
		startOff := start - d.pos
		filled := d.fill()
		// fill may have moved the input to the front of the buffer, even
		// when it read nothing.
		scanned, start = d.pos+off, d.pos+startOff
		if !filled {
			if d.err == nil {
				continue
			}
			return false
		}
	}
}

// bad records a BadRecordError for input at start. It returns false, for
// Next to return.
func (d *Decoder) bad(start int, reason string) bool {
	e := &BadRecordError{Offset: d.base + int64(start), Reason: reason}
	e.Snippet = append([]byte(nil), d.buf[start:min(d.end, start+snippetLen)]...)
	d.err = e
	return false
}

// skip discards the rest of a bad value. It returns false when input ends
// or fails first.
func (d *Decoder) skip() bool {
	for {
		b := d.buf[d.pos:d.end]
		if d.resuming {
			if done, n := d.resume.scan(b, d.base+int64(d.pos)); done {
				d.pos += n
				d.skipping = false
				return true
			}
		} else if done, n := d.bound.scan(b); done {
			d.pos += n
			d.skipping = false
			return true
		}
		d.base += int64(d.end)
		d.pos, d.end = 0, 0
		if d.eof {
			d.skipping = false
			return false
		}
		if !d.fill() && d.err != nil {
			return false
		}
	}
}

// fill reads more input, first moving unconsumed bytes to the front of the
// buffer and growing it when a record fills it. It returns false when
// nothing was added.
func (d *Decoder) fill() bool {
	if d.pos > 0 && (d.pos == d.end || d.end == len(d.buf) || d.pos > len(d.buf)/2) {
		copy(d.buf, d.buf[d.pos:d.end])
		d.base += int64(d.pos)
		d.end -= d.pos
		d.pos = 0
	}
	if d.end == len(d.buf) {
		nb := make([]byte, 2*len(d.buf))
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	for range 100 {
		n, err := d.r.Read(d.buf[d.end:])
		d.end += n
		if err == io.EOF {
			d.eof = true
			return n > 0
		}
		if err != nil {
			d.err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	d.err = io.ErrNoProgress
	return false
}

// boundary finds where a JSON object ends without validating it: it tracks
// only nesting and strings, so it can resume at any byte.
type boundary struct {
	depth int
	inStr bool
	esc   bool
}

// resume finds where decoding can go on after a bad value: after the
// value, if its nesting closes; at a '{' that follows a '}' or ']' (or,
// after a bad scalar, any '{'), which starts the next object of a
// back-to-back stream; or after the end of the line. Past the point of the
// error, string quoting cannot be trusted, so a '{' counts wherever it is.
type resume struct {
	bound    boundary // the bad value's nesting, from its first byte
	from     int64    // the stream offset of the error: a '{' counts from here
	prev     byte     // the last byte other than whitespace from there
	anyBrace bool     // the bad value is a scalar: any '{' starts the next object
}

// scan consumes b, which starts at stream offset off, and reports whether
// decoding can go on, and after how many bytes of b.
func (r *resume) scan(b []byte, off int64) (bool, int) {
	for i, c := range b {
		counts := off+int64(i) >= r.from
		switch {
		case c == '\n':
			return true, i + 1
		case counts && c == '{' && (r.anyBrace || r.prev == '}' || r.prev == ']'):
			return true, i
		}
		if done, _ := r.bound.scan(b[i : i+1]); done && !r.anyBrace {
			return true, i + 1
		}
		if counts && !isSpace(c) {
			r.prev = c
		}
	}
	return false, len(b)
}

// scan consumes b and reports whether the outermost value closed, and if so
// how many bytes of b it took.
func (s *boundary) scan(b []byte) (bool, int) {
	for i, c := range b {
		switch {
		case s.inStr:
			switch {
			case s.esc:
				s.esc = false
			case c == '\\':
				s.esc = true
			case c == '"':
				s.inStr = false
			}
		case c == '"':
			s.inStr = true
		case c == '{' || c == '[':
			s.depth++
		case c == '}' || c == ']':
			s.depth--
			if s.depth <= 0 {
				return true, i + 1
			}
		}
	}
	return false, len(b)
}

// offsetIn is the offset of sub, a subslice of whole, within it.
func offsetIn(whole, sub []byte) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(sub))) - uintptr(unsafe.Pointer(unsafe.SliceData(whole))))
}
