package plainint

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// Parse against strconv, on digits, near-digits and lengths around its
// eight-at-a-time steps.
func TestParse(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	alphabet := "0123456789/:a -.e\"+"
	for range 200_000 {
		b := make([]byte, rng.IntN(22))
		for i := range b {
			if rng.IntN(12) == 0 {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			} else {
				b[i] = byte('0' + rng.IntN(10))
			}
		}
		got, ok := Parse(b)
		want, err := strconv.ParseUint(string(b), 10, 64)
		wantOK := err == nil && len(b) <= 19 && (len(b) == 1 || b[0] != '0')
		if ok != wantOK || (ok && got != want) {
			t.Fatalf("Parse(%q) = %d, %v; want %d, %v", b, got, ok, want, wantOK)
		}
	}
}
