package follow

import (
	"bytes"
	"cmp"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/lockstep/lockstep/internal/plainint"
)

// An Order is an order value as the JSON text the endpoint sent: a number
// such as 1700000000123456789 or a string such as "2024-05-01T10:00:00Z".
// The zero Order means "nothing seen yet" and sorts before every value.
//
// Orders compare exactly: numbers as arbitrary-precision decimals (never
// through float64), strings bytewise by their decoded contents.
type Order string

// OrderKind tells numbers from strings; one endpoint uses one kind.
type OrderKind uint8

const (
	KindNone OrderKind = iota
	KindNumber
	KindString
)

func (k OrderKind) String() string {
	switch k {
	case KindNumber:
		return "number"
	case KindString:
		return "string"
	}
	return "none"
}

// Kind reports whether o is a number or a string (KindNone for the zero Order).
func (o Order) Kind() OrderKind { return kindOf(o) }

// Compare returns -1, 0 or +1. The zero Order is less than any other value;
// values of different kinds order numbers first, so that Compare is total.
func (o Order) Compare(p Order) int { return compareOrder(o, p) }

// Param is the text sent to the endpoint as the cursor: a number's exact
// spelling, or a string's contents without quotes. The zero Order is "0".
func (o Order) Param() string {
	switch kindOf(o) {
	case KindNumber:
		return string(o)
	case KindString:
		return string(unquote([]byte(o)))
	}
	return "0"
}

// ParseOrder reads a cursor given by a person (--since): JSON text is taken
// as it is, a bare number as a number, anything else as a string's contents.
func ParseOrder(s string) Order {
	if s == "" {
		return ""
	}
	b := []byte(s)
	if isNumber(b) {
		return Order(s)
	}
	if len(b) >= 2 && b[0] == '"' {
		if n, err := scanString(b, 0); err == nil && n == len(b) {
			return Order(s)
		}
	}
	return Order(strconv.Quote(s))
}

func (o Order) urlPath() string  { return url.PathEscape(o.Param()) }
func (o Order) urlQuery() string { return url.QueryEscape(o.Param()) }

// isNumber reports whether b is exactly one JSON number.
func isNumber(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	// scanNumber cannot know that a number at the end of its input is whole.
	n, err := scanNumber(append(b[:len(b):len(b)], ' '), 0)
	return err == nil && n == len(b)
}

func kindOf[T ~string | ~[]byte](o T) OrderKind {
	if len(o) == 0 {
		return KindNone
	}
	if o[0] == '"' {
		return KindString
	}
	return KindNumber
}

// CompareOrder is Order.Compare for values held as JSON text in byte
// slices, such as Record.Order; it does not allocate for plain integers.
func CompareOrder(a, b []byte) int { return compareOrder(a, b) }

// compareOrder compares two order values given as valid JSON text. It is on
// the hot path of every record, so plain integers take a path that neither
// allocates nor parses.
func compareOrder[T ~string | ~[]byte](a, b T) int {
	ka, kb := kindOf(a), kindOf(b)
	if ka != kb {
		if ka < kb {
			return -1
		}
		return 1
	}
	switch ka {
	case KindNone:
		return 0
	case KindString:
		return compareStrings([]byte(a), []byte(b))
	}
	if plainUint(a) && plainUint(b) {
		return comparePlain(a, b)
	}
	return compareDecimal(parseDecimal([]byte(a)), parseDecimal([]byte(b)))
}

// A mark is an order value a follower keeps (its cursor, the floor of a
// pass, the last value seen) with its number, if it is a plain integer
// (Record.OrderNumber): every record is compared with marks, and most
// compare as two numbers.
type mark struct {
	text  []byte
	num   uint64
	isNum bool
}

func (m *mark) set(text []byte) {
	m.text = append(m.text[:0], text...)
	m.num, m.isNum = plainint.Parse(text)
}

// setTo sets m to r's order value.
func (m *mark) setTo(r *Record) {
	m.text = append(m.text[:0], r.Order...)
	m.num, m.isNum = r.OrderNumber()
}

// vs compares r's order value with m's.
func (m *mark) vs(r *Record) int {
	if n, ok := r.OrderNumber(); ok && m.isNum {
		return cmp.Compare(n, m.num)
	}
	return compareOrder(r.Order, m.text)
}

// comparePlain compares two plain integers: JSON forbids leading zeros,
// so the longer is the greater, and equal lengths compare bytewise.
func comparePlain[T ~string | ~[]byte](a, b T) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return bytes.Compare([]byte(a), []byte(b))
}

// plainUint reports a non-negative integer with no fraction or exponent; JSON
// forbids leading zeros, so such numbers order by length, then bytewise.
func plainUint[T ~string | ~[]byte](s T) bool {
	i := 0
	// Eight bytes at a time: a byte is a digit if it has its top bit clear
	// both after adding 0x46 (so it is below ':') and after subtracting
	// 0x30 (so it is not below '0'). A borrow between bytes only happens
	// below a byte that already fails.
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if (w|(w+0x4646464646464646)|(w-0x3030303030303030))&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// decimal is a JSON number normalised to ±0.d1d2d3… × 10^exp, with the digits
// taken from two pieces of the original text so that nothing is copied.
type decimal struct {
	neg    bool
	zero   bool
	exp    int64
	hi, lo []byte // significant digits: hi then lo, no leading/trailing zeros across both
}

func (d decimal) digit(i int) byte {
	if i < len(d.hi) {
		return d.hi[i]
	}
	i -= len(d.hi)
	if i < len(d.lo) {
		return d.lo[i]
	}
	return '0'
}

func (d decimal) ndigits() int { return len(d.hi) + len(d.lo) }

// maxExp bounds exponents so that absurd ones ("1e999999999999999999") cannot
// overflow; numbers that differ only beyond it compare as equal.
const maxExp = 1 << 40

func parseDecimal(s []byte) decimal {
	var d decimal
	i := 0
	if i < len(s) && s[i] == '-' {
		d.neg = true
		i++
	}
	intStart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intPart := s[intStart:i]
	var frac []byte
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		frac = s[fs:i]
	}
	var e int64
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		for ; i < len(s); i++ {
			if e < maxExp {
				e = e*10 + int64(s[i]-'0')
			}
		}
		if eneg {
			e = -e
		}
	}
	// Strip leading zeros: the value's exponent is the position of its first
	// significant digit relative to the decimal point.
	exp := e + int64(len(intPart))
	for len(intPart) > 0 && intPart[0] == '0' {
		intPart = intPart[1:]
		exp--
	}
	if len(intPart) == 0 {
		for len(frac) > 0 && frac[0] == '0' {
			frac = frac[1:]
			exp--
		}
	}
	if len(intPart) == 0 {
		intPart, frac = frac, nil
	}
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if len(frac) == 0 {
		for len(intPart) > 0 && intPart[len(intPart)-1] == '0' {
			intPart = intPart[:len(intPart)-1]
		}
	}
	if len(intPart) == 0 {
		return decimal{zero: true}
	}
	d.hi, d.lo, d.exp = intPart, frac, exp
	return d
}

func compareDecimal(a, b decimal) int {
	sign := func(d decimal) int {
		switch {
		case d.zero:
			return 0
		case d.neg:
			return -1
		}
		return 1
	}
	sa, sb := sign(a), sign(b)
	if sa != sb {
		if sa < sb {
			return -1
		}
		return 1
	}
	if sa == 0 {
		return 0
	}
	c := compareMagnitude(a, b)
	if sa < 0 {
		return -c
	}
	return c
}

func compareMagnitude(a, b decimal) int {
	if a.exp != b.exp {
		if a.exp < b.exp {
			return -1
		}
		return 1
	}
	n := max(a.ndigits(), b.ndigits())
	for i := 0; i < n; i++ {
		da, db := a.digit(i), b.digit(i)
		if da != db {
			if da < db {
				return -1
			}
			return 1
		}
	}
	return 0
}

// compareStrings compares JSON strings by their decoded contents.
func compareStrings(a, b []byte) int {
	if bytes.IndexByte(a, '\\') < 0 && bytes.IndexByte(b, '\\') < 0 {
		return bytes.Compare(a[1:len(a)-1], b[1:len(b)-1])
	}
	return bytes.Compare(unquote(a), unquote(b))
}

// unquote decodes a valid JSON string literal. Lone surrogates decode to
// U+FFFD, as encoding/json does.
func unquote(s []byte) []byte {
	s = s[1 : len(s)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := rune(hex4(s[i+1 : i+5]))
			i += 4
			if r >= 0xD800 && r < 0xDC00 && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if r2 := rune(hex4(s[i+3 : i+7])); r2 >= 0xDC00 && r2 < 0xE000 {
					r = (r-0xD800)<<10 + (r2 - 0xDC00) + 0x10000
					i += 6
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
		default:
			out = append(out, s[i])
		}
	}
	return out
}

func hex4(b []byte) int {
	n := 0
	for _, c := range b {
		n <<= 4
		switch {
		case c >= '0' && c <= '9':
			n |= int(c - '0')
		case c >= 'a' && c <= 'f':
			n |= int(c-'a') + 10
		default:
			n |= int(c-'A') + 10
		}
	}
	return n
}
