package follow

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/lockstep/lockstep/internal/sample"
)

// FuzzDecoder: no panic; every record is a trimmed slice of the input, an
// object that encoding/json accepts, whose key and order fields are what
// encoding/json finds; and cutting the input anywhere changes nothing.
func FuzzDecoder(f *testing.F) {
	sample.FuzzSeeds(f, "decoder")
	f.Fuzz(func(t *testing.T, in []byte) {
		whole := decodeAll(bytes.NewReader(in), DecoderOptions{MaxRecordSize: 1 << 16}, true)
		var keys []string
		for _, k := range whole.keys {
			if k != "BAD" {
				keys = append(keys, k)
			}
		}
		for i, r := range whole.records {
			if !bytes.Contains(in, []byte(r)) || strings.TrimSpace(r) != r {
				t.Fatalf("record %q is not a trimmed slice of the input", r)
			}
			if !json.Valid([]byte(r)) || !utf8.ValidString(r) || r[0] != '{' {
				t.Fatalf("record %q is not a valid JSON object", r)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(r), &m); err != nil {
				t.Fatalf("record %q: %v", r, err)
			}
			if string(m["id"]) != keys[i] {
				t.Fatalf("record %q: key %s, encoding/json says %s", r, keys[i], m["id"])
			}
			// The decoder reuses what it learned from the records before
			// (their layout); ParseRecord starts afresh.
			if alone, err := ParseRecord([]byte(r), DecoderOptions{}); err != nil || fieldsOf(&alone) != whole.fields[i] {
				t.Fatalf("record %q: decoded as %s, alone as %s (%v)", r, whole.fields[i], fieldsOf(&alone), err)
			}
		}
		cut := 0
		if len(in) > 0 {
			cut = int(in[0]) % (len(in) + 1)
		}
		split := decodeAll(io.MultiReader(bytes.NewReader(in[:cut]), bytes.NewReader(in[cut:])), DecoderOptions{MaxRecordSize: 1 << 16}, true)
		if strings.Join(split.records, "\x00") != strings.Join(whole.records, "\x00") || errors.Is(split.err, ErrTruncated) != errors.Is(whole.err, ErrTruncated) {
			t.Fatalf("cut at %d: %q, whole: %q", cut, split.records, whole.records)
		}
	})
}

// FuzzParseRecord: the field extraction agrees with encoding/json.
func FuzzParseRecord(f *testing.F) {
	sample.FuzzSeeds(f, "decoder")
	f.Add([]byte(`{"id":1,"updated_at":2,"deleted_at":null}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseRecord(in, DecoderOptions{})
		if err != nil {
			return
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(in, &m); err != nil {
			t.Fatalf("ParseRecord accepted %q, encoding/json: %v", in, err)
		}
		if string(m["id"]) != string(r.Key) || string(m["updated_at"]) != string(r.Order) {
			t.Fatalf("%q: key %s order %s, encoding/json: %s %s", in, r.Key, r.Order, m["id"], m["updated_at"])
		}
		del, ok := m["deleted_at"]
		if r.Deleted != (ok && string(del) != "null") {
			t.Fatalf("%q: Deleted %v", in, r.Deleted)
		}
	})
}

// FuzzCompareOrder: exact comparison agrees with math/big.
func FuzzCompareOrder(f *testing.F) {
	for _, p := range [][2]string{{"1", "2"}, {"9007199254740993", "9007199254740992"}, {"1.0", "1"}, {"-0", "0"}, {"1e3", "999.9"}, {"0.000", "-0.0e7"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !isNumber([]byte(a)) || !isNumber([]byte(b)) || len(a) > 200 || len(b) > 200 || hugeExponent(a) || hugeExponent(b) {
			return
		}
		ra, ok1 := new(big.Rat).SetString(a)
		rb, ok2 := new(big.Rat).SetString(b)
		if !ok1 || !ok2 {
			t.Fatalf("big.Rat refused %q or %q", a, b)
		}
		if got, want := Order(a).Compare(Order(b)), ra.Cmp(rb); got != want {
			t.Fatalf("Compare(%s, %s) = %d, big.Rat says %d", a, b, got, want)
		}
		// The follower's shortcut for plain integers must agree.
		var m mark
		m.set([]byte(b))
		if got, want := m.vs(&Record{Order: []byte(a)}), ra.Cmp(rb); got != want {
			t.Fatalf("mark %s vs %s = %d, big.Rat says %d", b, a, got, want)
		}
	})
}

func hugeExponent(s string) bool {
	i := strings.IndexAny(s, "eE")
	return i >= 0 && len(strings.TrimLeft(s[i+1:], "+-0")) > 3
}
