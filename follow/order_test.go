package follow

import (
	"bytes"
	"testing"
)

func TestCompareOrder(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"9007199254740993", "9007199254740992", 1},
		{"1700000000123456789", "1700000000123456788", 1},
		{"10", "9", 1},
		{"1", "1", 0},
		{"1.0", "1", 0},
		{"1e2", "100", 0},
		{"1E+2", "99.999", 1},
		{"-1", "1", -1},
		{"-2", "-1", -1},
		{"-0", "0", 0},
		{"0.0001", "1e-4", 0},
		{"0.1", "0.09", 1},
		{"123456789012345678901234567890", "123456789012345678901234567891", -1},
		{"1.5", "1.49999999999999999999", 1},
		{"2e-3", "0.002", 0},
		{"1e999999999999999999999", "1", 1},
		{`"2024-01-02T00:00:00Z"`, `"2024-01-01T23:59:59Z"`, 1},
		{`"a"`, `"\u0061"`, 0},
		{`"b"`, `"a\u00ff"`, 1},
		{`"x"`, "5", 1}, // kinds differ: numbers first
		{"", "0", -1},   // nothing seen yet sorts first
		{"", "", 0},
	}
	for _, tt := range tests {
		if got := Order(tt.a).Compare(Order(tt.b)); got != tt.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Order(tt.b).Compare(Order(tt.a)); got != -tt.want {
			t.Errorf("Compare(%s, %s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestOrderParam(t *testing.T) {
	tests := []struct {
		order Order
		param string
	}{
		{"1700000000123456789", "1700000000123456789"},
		{"1.5e3", "1.5e3"},
		{`"2024-01-01T00:00:00Z"`, "2024-01-01T00:00:00Z"},
		{`"a\"b"`, `a"b`},
		{"", "0"},
	}
	for _, tt := range tests {
		if got := tt.order.Param(); got != tt.param {
			t.Errorf("Order(%s).Param() = %q, want %q", tt.order, got, tt.param)
		}
	}
}

func TestParseOrder(t *testing.T) {
	tests := []struct{ in, want string }{
		{"998", "998"},
		{"1700000000123456789", "1700000000123456789"},
		{"-1.5", "-1.5"},
		{"2024-01-01T00:00:00Z", `"2024-01-01T00:00:00Z"`},
		{`"quoted"`, `"quoted"`},
		{"01", `"01"`}, // not a JSON number
		{"", ""},
	}
	for _, tt := range tests {
		if got := ParseOrder(tt.in); string(got) != tt.want {
			t.Errorf("ParseOrder(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// plainUint's eight-bytes-at-a-time test against the plain definition,
// for every byte value in every position of words around each digit.
func TestPlainUint(t *testing.T) {
	slow := func(s []byte) bool {
		for _, c := range s {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	for n := 0; n <= 17; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				s := bytes.Repeat([]byte("7"), n)
				s[pos] = byte(c)
				if got, want := plainUint(s), slow(s); got != want {
					t.Fatalf("plainUint(%q) = %v, want %v", s, got, want)
				}
				if got := plainUint(string(s)); got != slow(s) {
					t.Fatalf("plainUint(string %q) = %v", s, got)
				}
			}
		}
	}
}

// A mark compares plain integers as numbers: it must agree with
// compareOrder on every pair, plain or not, on both sides of 10^19.
func TestMark_Vs(t *testing.T) {
	vals := []string{"", "0", "1", "9", "10", "99", "100", "1700000000000", "1700000000001",
		"1.5", "1e3", "-1", "0.0", "10.0", `"a"`, `"10"`, "12345678901234567890123",
		"9999999999999999999", "10000000000000000000", "18446744073709551615", "18446744073709551616"}
	for _, a := range vals {
		for _, b := range vals {
			var m mark
			m.set([]byte(b))
			if got, want := m.vs(&Record{Order: []byte(a)}), compareOrder([]byte(a), []byte(b)); got != want {
				t.Errorf("mark %s vs %s = %d, compareOrder says %d", b, a, got, want)
			}
		}
	}
}
