package follow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf8"
)

// This file validates JSON by hand. encoding/json would re-decode every record
// into maps; lockstep only needs to know that a record is valid and where
// three top-level fields are, so a single pass over the bytes does.

// errShort means the input ended inside a value: more bytes are needed.
var errShort = errors.New("short")

// maxDepth bounds nesting, as encoding/json does, so that hostile input
// ("[[[[…") cannot grow the stack without limit.
const maxDepth = 10000

type syntaxError struct {
	msg string
	off int // offset within the record
}

func (e *syntaxError) Error() string { return e.msg }

func synErr(off int, format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...), off: off}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// scanValue validates the JSON value starting at b[i] and returns the offset
// just past it.
func scanValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return i, errShort
	}
	switch c := b[i]; {
	case c == '{':
		return scanObject(b, i, depth+1, nil)
	case c == '[':
		return scanArray(b, i, depth+1)
	case c == '"':
		return scanString(b, i)
	case c == '-' || (c >= '0' && c <= '9'):
		return scanNumber(b, i)
	case c == 't':
		return scanLiteral(b, i, "true")
	case c == 'f':
		return scanLiteral(b, i, "false")
	case c == 'n':
		return scanLiteral(b, i, "null")
	default:
		return i, synErr(i, "invalid character %s looking for a value", quoteChar(c))
	}
}

func scanLiteral(b []byte, i int, lit string) (int, error) {
	for j := 0; j < len(lit); j++ {
		if i+j >= len(b) {
			return i + j, errShort
		}
		if b[i+j] != lit[j] {
			return i + j, synErr(i+j, "invalid character %s in literal %s", quoteChar(b[i+j]), lit)
		}
	}
	return i + len(lit), nil
}

// fieldSpans locates the top-level members a caller wants.
type fieldSpans struct {
	names [3]string // key, order, deleted
	lens  uint64    // bit n set if a name has n bytes (n < 64)
	// A name's first eight bytes as a little-endian word, and the mask
	// of the bytes it has there: most names are told apart with one load.
	head, mask [3]uint64
	layout     *layout // the last object's, if kept
	start, end [3]int  // value spans; start -1 when absent
}

// A layout is the first members of the last object scanned: the objects of
// a stream mostly share one, and a name that is, byte for byte, the one
// before it in its place needs no scan and no matching.
type layout [8]member

// member is a name as it was seen: its quotes and the colon after it
// ('"id":', up to 16 bytes) as two little-endian words, zero past size,
// and which of the wanted names it is.
type member struct {
	lo, hi         uint64
	loMask, hiMask uint64
	size           int // 0: nothing seen here yet
	fields         uint8
}

func newFieldSpans(names [3]string) fieldSpans {
	w := fieldSpans{names: names}
	w.reset()
	for f, n := range names {
		if len(n) < 64 {
			w.lens |= 1 << len(n)
		}
		var h [8]byte
		k := copy(h[:], n)
		// A shift by 64 gives 0, so eight bytes give a mask of all ones.
		w.head[f], w.mask[f] = binary.LittleEndian.Uint64(h[:]), 1<<(8*k)-1
	}
	return w
}

// reset forgets the spans of the last object.
func (w *fieldSpans) reset() { w.start = [3]int{-1, -1, -1} }

func scanObject(b []byte, i, depth int, want *fieldSpans) (int, error) {
	if depth > maxDepth {
		return i, synErr(i, "nesting deeper than %d", maxDepth)
	}
	i++ // '{'
	i = skipSpace(b, i)
	if i >= len(b) {
		return i, errShort
	}
	if b[i] == '}' {
		return i + 1, nil
	}
	for k := 0; ; k++ {
		if i >= len(b) {
			return i, errShort
		}
		var fields uint8
		if m := want.seen(b, i, k); m != nil {
			i += m.size
			fields = m.fields
		} else {
			if b[i] != '"' {
				return i, synErr(i, "invalid character %s looking for an object key", quoteChar(b[i]))
			}
			ks := i
			var err error
			esc := false
			// Names are plain: only one with an escape takes the full scan.
			j := plainRun(b, i+1)
			if j < len(b) && b[j] == '"' {
				i = j + 1
			} else if i, esc, err = scanStringEsc(b, i); err != nil {
				return i, err
			}
			n := i - ks
			if i < len(b) && b[i] == ':' {
				i++
			} else {
				i = skipSpace(b, i)
				if i >= len(b) {
					return i, errShort
				}
				if b[i] != ':' {
					return i, synErr(i, "invalid character %s after object key", quoteChar(b[i]))
				}
				i++
			}
			if want != nil {
				fields = want.which(b, ks, n, esc)
				if l := want.layout; l != nil && i-ks == n+1 && n < 16 && k < len(l) && ks+16 <= len(b) {
					l[k] = newMember(b[ks:], n+1, fields)
				}
			}
		}
		if i < len(b) && isSpace(b[i]) {
			i = skipSpace(b, i)
		}
		vs := i
		var err error
		i, err = scanValueFast(b, i, depth)
		if err != nil {
			return i, err
		}
		if fields != 0 {
			for f := range want.start {
				if fields&(1<<f) != 0 {
					// A repeated name: the last one wins, as in encoding/json and jq.
					want.start[f], want.end[f] = vs, i
				}
			}
		}
		if i < len(b) && isSpace(b[i]) {
			i = skipSpace(b, i)
		}
		if i >= len(b) {
			return i, errShort
		}
		switch b[i] {
		case ',':
			i++
			if i < len(b) && isSpace(b[i]) {
				i = skipSpace(b, i)
			}
		case '}':
			return i + 1, nil
		default:
			return i, synErr(i, "invalid character %s after object value", quoteChar(b[i]))
		}
	}
}

// seen returns the k-th member of the last object's layout if its name
// and colon are the bytes at b[i:], or nil.
func (w *fieldSpans) seen(b []byte, i, k int) *member {
	if w == nil || w.layout == nil || k >= len(w.layout) || i+16 > len(b) {
		return nil
	}
	m := &w.layout[k]
	if lo, hi := binary.LittleEndian.Uint64(b[i:]), binary.LittleEndian.Uint64(b[i+8:]); m.size == 0 || lo&m.loMask != m.lo || hi&m.hiMask != m.hi {
		return nil
	}
	return m
}

// newMember is the member whose name and colon are the size bytes at the
// start of b, which holds at least 16.
func newMember(b []byte, size int, fields uint8) member {
	m := member{size: size, fields: fields}
	m.loMask = 1<<(8*min(size, 8)) - 1 // a shift by 64 gives 0: all ones
	m.hiMask = 1<<(8*(size-min(size, 8))) - 1
	m.lo = binary.LittleEndian.Uint64(b) & m.loMask
	m.hi = binary.LittleEndian.Uint64(b[8:]) & m.hiMask
	return m
}

// scanValueFast is scanValue with the common cases, a plain string or a
// small integer followed by a delimiter, handled without its full scan.
func scanValueFast(b []byte, i, depth int) (int, error) {
	if i < len(b) {
		switch c := b[i]; {
		case c == '"':
			j := plainRun(b, i+1)
			if j < len(b) && b[j] == '"' {
				return j + 1, nil
			}
		case c >= '1' && c <= '9':
			j := i + 1
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			if j < len(b) && (b[j] == ',' || b[j] == '}' || b[j] == ']') {
				return j, nil
			}
		}
	}
	return scanValue(b, i, depth)
}

// which reports which wanted names (bit f for names[f]) the member whose
// quoted name is the n bytes of b from ks has.
func (w *fieldSpans) which(b []byte, ks, n int, escaped bool) (fields uint8) {
	// Most members are none of the three, and most differ in length.
	if l := n - 2; !escaped && l < 64 && w.lens>>l&1 == 0 {
		return 0
	}
	name := b[ks+1 : ks+n-1]
	if !escaped && ks+9 <= len(b) {
		word := binary.LittleEndian.Uint64(b[ks+1:])
		for f := range w.names {
			if len(name) == len(w.names[f]) && word&w.mask[f] == w.head[f] &&
				(len(name) <= 8 || string(name[8:]) == w.names[f][8:]) {
				fields |= 1 << f
			}
		}
		return fields
	}
	if escaped {
		name = unquote(b[ks : ks+n])
	}
	for f := range w.names {
		if string(name) == w.names[f] {
			fields |= 1 << f
		}
	}
	return fields
}

func scanArray(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return i, synErr(i, "nesting deeper than %d", maxDepth)
	}
	i = skipSpace(b, i+1)
	if i >= len(b) {
		return i, errShort
	}
	if b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		i, err = scanValueFast(b, i, depth)
		if err != nil {
			return i, err
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return i, errShort
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, synErr(i, "invalid character %s after array element", quoteChar(b[i]))
		}
	}
}

// plainRun returns the end of the run of plain string bytes (ASCII, not
// a quote, a backslash or a control character) from i: eight at a time
// while eight remain.
func plainRun(b []byte, i int) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		q, s := w^'"'*lo, w^'\\'*lo
		// A byte's high bit is set here if it is below 0x20, equal to
		// a quote or a backslash, or not ASCII; borrows can only set
		// bits above the first such byte.
		if m := ((w-0x20*lo)&^w | (q-lo)&^q | (s-lo)&^s | w) & hi; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(b) && plain[b[i]] {
		i++
	}
	return i
}

// plain marks the bytes a string can hold that need no second look.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString validates a string literal, including its UTF-8 (RFC 8259
// requires it, and records are handed on byte for byte to jq and friends).
func scanString(b []byte, i int) (int, error) {
	i, _, err := scanStringEsc(b, i)
	return i, err
}

// scanStringEsc is scanString, also reporting whether the string holds an
// escape (and so differs from its contents).
func scanStringEsc(b []byte, i int) (int, bool, error) {
	i++ // '"'
	esc := false
	for {
		// The common case: a run of plain ASCII.
		i = plainRun(b, i)
		if i >= len(b) {
			return i, esc, errShort
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				return i, esc, errShort
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := 2; j < 6; j++ {
					if i+j >= len(b) {
						return i, esc, errShort
					}
					if !isHex(b[i+j]) {
						return i + j, esc, synErr(i+j, "invalid character %s in \\u escape", quoteChar(b[i+j]))
					}
				}
				i += 6
			default:
				return i + 1, esc, synErr(i+1, "invalid escape %s in string", quoteChar(b[i+1]))
			}
		case c < 0x20:
			return i, esc, synErr(i, "invalid control character %s in string", quoteChar(c))
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				if !utf8.FullRune(b[i:]) {
					return i, esc, errShort
				}
				return i, esc, synErr(i, "invalid UTF-8 in string")
			}
			i += size
		}
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber validates a number. A number at the very end of the input is
// reported short: more digits may follow in the next read.
func scanNumber(b []byte, i int) (int, error) {
	start := i
	if b[i] == '-' {
		i++
		if i >= len(b) {
			return i, errShort
		}
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return i, synErr(i, "invalid character %s in number", quoteChar(b[i]))
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) {
			return i, errShort
		}
		if !isDigit(b[i]) {
			return i, synErr(i, "invalid character %s after decimal point", quoteChar(b[i]))
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) {
			return i, errShort
		}
		if !isDigit(b[i]) {
			return i, synErr(i, "invalid character %s in exponent", quoteChar(b[i]))
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i >= len(b) && i > start {
		return i, errShort
	}
	return i, nil
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	if c >= 0x20 && c < 0x7f {
		return "'" + string(c) + "'"
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
