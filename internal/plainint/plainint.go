// Package plainint parses plain integers: the order values and keys most
// endpoints send (ids, timestamps in milliseconds). A follower parses each
// once, on its decoding goroutine, and compares and stores the number.
package plainint

import "encoding/binary"

// Parse is the value of s if it is a plain integer below 10^19, written as
// JSON writes it: digits only, no leading zero, sign, fraction, exponent or
// quotes.
func Parse(s []byte) (uint64, bool) {
	if len(s) == 0 || len(s) > 19 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var n uint64
	i := 0
	// Eight digits at a time (as simdjson parses them): a byte is a digit
	// if its top bit is clear both after adding 0x46 (so it is below ':')
	// and after subtracting 0x30 (so it is not below '0'); a borrow between
	// bytes only happens below a byte that already fails. Then the digits
	// are combined in pairs, fours and eights.
	for ; i+8 <= len(s); i += 8 {
		w := binary.LittleEndian.Uint64(s[i:])
		if (w|(w+0x4646464646464646)|(w-0x3030303030303030))&0x8080808080808080 != 0 {
			return 0, false
		}
		w -= 0x3030303030303030
		w = w*10 + w>>8
		w = ((w&0x000000FF000000FF)*(100+1000000<<32) + (w>>16&0x000000FF000000FF)*(1+10000<<32)) >> 32
		n = n*100_000_000 + w
	}
	for ; i < len(s); i++ {
		c := s[i] - '0'
		if c > 9 {
			return 0, false
		}
		n = n*10 + uint64(c)
	}
	return n, true
}
