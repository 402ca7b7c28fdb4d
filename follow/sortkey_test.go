package follow

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// Sort keys order values exactly as CompareOrder does.
func TestAppendSortKey(t *testing.T) {
	values := []string{
		"0", "-0", "0.0", "1", "1.0", "1e0", "10", "9", "0.5", "0.55", "-0.5", "-0.55", "-5", "-50",
		"9007199254740993", "9007199254740992", "1e400", "-1e400", "1e-400", "123.456e-2",
		`""`, `"a"`, `"a\u0000"`, `"ab"`, `"b"`, `"\u00e9"`, `"é"`, `"2026-11-26T00:00:00Z"`,
	}
	for i := range 200 {
		values = append(values, string(rune('0'+i%10))+"."+string(rune('0'+i/10%10)))
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		a, b := values[rnd.IntN(len(values))], values[rnd.IntN(len(values))]
		want := CompareOrder([]byte(a), []byte(b))
		got := bytes.Compare(AppendSortKey(nil, []byte(a)), AppendSortKey(nil, []byte(b)))
		if got != want {
			t.Fatalf("%s vs %s: sort keys compare %d, values %d", a, b, got, want)
		}
	}
}

func FuzzSortKey(f *testing.F) {
	f.Add("1", "2")
	f.Add("-0.5", "-0.55")
	f.Add(`"a"`, `"b"`)
	f.Fuzz(func(t *testing.T, a, b string) {
		ra, errA := ParseRecord([]byte(`{"id":1,"updated_at":`+a+`}`), DecoderOptions{})
		rb, errB := ParseRecord([]byte(`{"id":1,"updated_at":`+b+`}`), DecoderOptions{})
		if errA != nil || errB != nil {
			return
		}
		want := CompareOrder(ra.Order, rb.Order)
		if got := bytes.Compare(AppendSortKey(nil, ra.Order), AppendSortKey(nil, rb.Order)); got != want {
			t.Fatalf("%s vs %s: sort keys compare %d, values %d", ra.Order, rb.Order, got, want)
		}
	})
}
