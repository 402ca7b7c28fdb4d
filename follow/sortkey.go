package follow

import "encoding/binary"

// Classes of value, in the order CompareOrder and the snapshot's key order
// put them: numbers (negative, zero, positive), then strings.
const (
	sortNegative = 0x02
	sortZero     = 0x03
	sortPositive = 0x04
	sortString   = 0x05
)

// AppendSortKey appends to dst a sort key of the JSON number or string v:
// bytes whose bytewise order is the order CompareOrder gives the values
// (numbers by exact value, before strings by their decoded contents), so
// that a database index, which compares bytes, sorts records as lockstep
// does. Values equal in value (1, 1.0 and 1e0) get the same sort key.
func AppendSortKey(dst, v []byte) []byte {
	switch kindOf(v) {
	case KindString:
		return append(append(dst, sortString), unquote(v)...)
	case KindNone:
		return dst
	}
	d := parseDecimal(v)
	if d.zero {
		return append(dst, sortZero)
	}
	// ±0.d1d2… × 10^exp: the exponent, then the digits, which compare as
	// text once trailing zeros are gone; a negative number's are inverted,
	// and end in 0xFF so that a longer magnitude sorts first.
	exp := uint64(d.exp) ^ 1<<63
	if !d.neg {
		dst = append(dst, sortPositive)
		dst = binary.BigEndian.AppendUint64(dst, exp)
		return append(append(dst, d.hi...), d.lo...)
	}
	dst = append(dst, sortNegative)
	dst = binary.BigEndian.AppendUint64(dst, ^exp)
	for i := range d.ndigits() {
		dst = append(dst, 0xFF-d.digit(i))
	}
	return append(dst, 0xFF)
}
