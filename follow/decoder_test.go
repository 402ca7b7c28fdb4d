package follow

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// readMakers wrap a stream the ways a network delivers it.
var readMakers = []struct {
	name string
	fn   func(io.Reader) io.Reader
}{
	{"whole", func(r io.Reader) io.Reader { return r }},
	{"byte", iotest.OneByteReader},
	{"half", iotest.HalfReader},
	{"dataerr", iotest.DataErrReader},
}

type decoded struct {
	keys    []string
	records []string
	fields  []string // each record's key, order value and whether it is deleted
	err     error
}

func decodeAll(r io.Reader, opts DecoderOptions, skipBad bool) decoded {
	var out decoded
	d := NewDecoder(r, opts)
	for {
		for d.Next() {
			rec := d.Record()
			out.keys = append(out.keys, string(rec.Key))
			out.records = append(out.records, string(rec.Bytes))
			out.fields = append(out.fields, fieldsOf(rec))
		}
		var bad *BadRecordError
		if skipBad && errors.As(d.Err(), &bad) {
			out.keys = append(out.keys, "BAD")
			continue
		}
		out.err = d.Err()
		return out
	}
}

func fieldsOf(r *Record) string {
	return fmt.Sprintf("%s@%s deleted=%v", r.Key, r.Order, r.Deleted)
}

// A decoder takes a name that is, byte for byte, the one the last record
// had in its place without scanning it. Names that differ from the last
// layout in any byte, in the spacing around them or in their escapes
// must still be found as ParseRecord, which keeps no layout, finds them.
func TestDecoder_Layout(t *testing.T) {
	base := `{"id":1,"updated_at":10,"deleted_at":null,"name":"a"}`
	tests := []struct {
		name    string
		records []string
	}{
		{"SameLayout", []string{base, `{"id":2,"updated_at":11,"deleted_at":5,"name":"b"}`}},
		{"NamesMoved", []string{base, `{"updated_at":11,"id":2,"name":"b","deleted_at":1}`}},
		{"NameExtended", []string{base, `{"id2":2,"id":3,"updated_at_":1,"updated_at":12,"deleted_at":null}`}},
		{"NameShortened", []string{base, `{"i":2,"id":3,"updated":1,"updated_at":12}`}},
		{"LastByteDiffers", []string{base, `{"ie":2,"id":3,"updated_au":1,"updated_at":12,"deleted_au":1}`}},
		{"SpaceBeforeColon", []string{base, `{"id" :4,"updated_at"  :13,"deleted_at" : 1}`, `{"id" :5,"updated_at"  :14,"deleted_at" : 1}`}},
		{"SpaceAfterColon", []string{base, `{"id": 4,"updated_at": 13}`}},
		{"EscapedName", []string{base, `{"i\u0064":5,"updated_at":14,"deleted\u005fat":2}`, base}},
		{"EscapedTwiceThenPlain", []string{`{"i\u0064":5,"updated_at":14}`, `{"i\u0064":6,"updated_at":15}`, base}},
		{"WantedNameGone", []string{base, `{"id":6,"updated_at":15,"deleted_atx":1,"deleted_at":null}`}},
		{"LongNames", []string{`{"a_name_of_sixteen":1,"a_name_of_fifteen":2,"id":7,"updated_at":16}`, `{"a_name_of_sixteen":1,"a_name_of_fifteen":2,"id":8,"updated_at":17}`}},
		{"ManyMembers", []string{`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"id":9,"updated_at":18,"deleted_at":1}`, `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"id":10,"updated_at":19}`}},
		{"RepeatedName", []string{base, `{"id":1,"id":2,"updated_at":20,"updated_at":21}`}},
		{"NestedSameNames", []string{base, `{"x":{"id":9,"updated_at":1},"id":11,"updated_at":22}`}},
		{"BadNameInPlace", []string{base, `{"id":12,"updated_at":23}`, `{"id\q":1,"updated_at":24}`, `{"id":13,"updated_at":25}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := strings.Join(tt.records, "\n")
			var want, parsed []string
			p := NewParser(DecoderOptions{})
			for _, r := range tt.records {
				rec, err := ParseRecord([]byte(r), DecoderOptions{})
				if err != nil {
					want = append(want, "BAD")
				} else {
					want = append(want, fieldsOf(&rec))
				}
				if rec, err := p.Parse([]byte(r)); err != nil {
					parsed = append(parsed, "BAD")
				} else {
					parsed = append(parsed, fieldsOf(&rec))
				}
			}
			if strings.Join(parsed, "\n") != strings.Join(want, "\n") {
				t.Fatalf("a Parser found\n%s\nParseRecord finds\n%s", strings.Join(parsed, "\n"), strings.Join(want, "\n"))
			}
			got := decodeAll(strings.NewReader(in), DecoderOptions{}, true)
			var fields []string
			good := got.fields
			for _, k := range got.keys {
				if k == "BAD" {
					fields = append(fields, "BAD")
				} else {
					fields, good = append(fields, good[0]), good[1:]
				}
			}
			if strings.Join(fields, "\n") != strings.Join(want, "\n") {
				t.Fatalf("decoder found\n%s\nParseRecord finds\n%s", strings.Join(fields, "\n"), strings.Join(want, "\n"))
			}
		})
	}
	// The layout is in use: a record's names are known after one record.
	d := NewDecoder(strings.NewReader(base+"\n"+base), DecoderOptions{})
	if !d.Next() || d.spans.layout[0].size != len(`"id":`) || d.spans.layout[3].size != len(`"name":`) {
		t.Fatalf("layout after %s: %+v", base, d.spans.layout[:4])
	}
}

func TestDecoder_Framing(t *testing.T) {
	a := `{"id":1,"updated_at":10,"deleted_at":null}`
	b := `{"id":"x","updated_at":11}`
	tests := []struct {
		name  string
		input string
		keys  []string
	}{
		{"NewlineBetweenObjects", a + "\n" + b + "\n", []string{"1", `"x"`}},
		{"CRLFBetweenObjects", a + "\r\n" + b + "\r\n", []string{"1", `"x"`}},
		{"BlankLineHeartbeats", "\n\n" + a + "\n\n\n" + b + "\n\n", []string{"1", `"x"`}},
		{"NoSeparator", a + b + a, []string{"1", `"x"`, "1"}},
		{"OtherWhitespace", " \t" + a + " \t\r\n " + b, []string{"1", `"x"`}},
		{"NoFinalNewline", a + "\n" + b, []string{"1", `"x"`}},
		{"PrettyPrinted", "{\n  \"id\": 2,\n  \"updated_at\": 3\n}\n", []string{"2"}},
		{"Empty", "", nil},
		{"OnlyHeartbeats", "\n\n\r\n", nil},
		{"NestedAndEscapes", `{"id":"a\"b","x":{"id":9,"y":[1,{"updated_at":"no"}]},"updated_at":5}`, []string{`"a\"b"`}},
		{"EscapedFieldName", `{"i\u0064":7,"updated_at":5}`, []string{"7"}},
		{"RepeatedFieldLastWins", `{"id":1,"id":2,"updated_at":5}`, []string{"2"}},
		{"MultiByteUTF8", `{"id":"ключ","updated_at":5,"s":"😀"}`, []string{`"ключ"`}},
	}
	for _, tt := range tests {
		for _, rm := range readMakers {
			t.Run(tt.name+"/"+rm.name, func(t *testing.T) {
				got := decodeAll(rm.fn(strings.NewReader(tt.input)), DecoderOptions{}, false)
				if got.err != nil {
					t.Fatalf("err = %v", got.err)
				}
				if strings.Join(got.keys, ",") != strings.Join(tt.keys, ",") {
					t.Fatalf("keys = %q, want %q", got.keys, tt.keys)
				}
				for _, r := range got.records {
					if !strings.Contains(tt.input, r) || strings.TrimSpace(r) != r {
						t.Fatalf("record %q is not a trimmed slice of the input", r)
					}
				}
			})
		}
	}
}

func TestDecoder_FieldsAndTombstones(t *testing.T) {
	in := `{"id":1,"updated_at":10,"deleted_at":null}{"id":2,"updated_at":"2024-01-01T00:00:00Z","deleted_at":5}{"k":3,"v":1}`
	d := NewDecoder(strings.NewReader(in), DecoderOptions{})
	var got []string
	for d.Next() {
		r := d.Record()
		got = append(got, string(r.Key)+"@"+string(r.Order)+map[bool]string{true: "-", false: "+"}[r.Deleted])
	}
	want := `1@10+,2@"2024-01-01T00:00:00Z"-`
	if strings.Join(got, ",") != want {
		t.Fatalf("got %q, want %q", strings.Join(got, ","), want)
	}
	d2 := NewDecoder(strings.NewReader(`{"k":3,"v":1,"t":4,"gone":true}`), DecoderOptions{Key: "k", OrderBy: "t", Deleted: "gone"})
	if !d2.Next() || string(d2.Record().Key) != "3" || !d2.Record().Deleted {
		t.Fatalf("custom field names: got %+v, err %v", d2.Record(), d2.Err())
	}
	// Names are matched by length first: escaped names, names of 64 bytes
	// and more, and members as long as a wanted name must still be told.
	long := strings.Repeat("k", 70)
	for _, tc := range []struct {
		in   string
		opts DecoderOptions
		want string
	}{
		{`{"\u0069d":7,"updated_at":1,"deleted_at":null}`, DecoderOptions{}, "7@1+"},
		{`{"ix":0,"id":7,"updated_at_":0,"updated_at":1,"deleted_at":null}`, DecoderOptions{}, "7@1+"},
		{`{"` + long + `":7,"` + long + `x":8,"t":2,"` + long[:63] + `":9}`, DecoderOptions{Key: long, OrderBy: "t"}, "7@2+"},
	} {
		d := NewDecoder(strings.NewReader(tc.in), tc.opts)
		if !d.Next() {
			t.Fatalf("%s: %v", tc.in, d.Err())
		}
		r := d.Record()
		if got := string(r.Key) + "@" + string(r.Order) + map[bool]string{true: "-", false: "+"}[r.Deleted]; got != tc.want {
			t.Fatalf("%s: got %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestDecoder_BadRecords(t *testing.T) {
	good := `{"id":1,"updated_at":10}`
	tests := []struct {
		name   string
		input  string
		reason string
		keys   string // with skipping
	}{
		{"InvalidJSON", `{"id":1,"updated_at":tru}` + "\n" + good, "invalid character '}' in literal true at byte 24", "BAD,1"},
		{"NotAnObject", "[1,2]\n" + good, "expected a JSON object", "BAD,1"},
		{"Garbage", "hello world\n" + good, "expected a JSON object, found 'h'", "BAD,1"},
		{"MissingKey", `{"updated_at":10}` + good, `no "id" field`, "BAD,1"},
		{"MissingOrder", `{"id":1}` + "\n" + good, `no "updated_at" field`, "BAD,1"},
		{"KeyNotScalar", `{"id":[1],"updated_at":10}` + good, `"id" is not a number or string`, "BAD,1"},
		{"OrderNull", `{"id":1,"updated_at":null}` + good, `"updated_at" is not a number or string`, "BAD,1"},
		{"InvalidUTF8", "{\"id\":1,\"updated_at\":10,\"s\":\"\xff\"}\n" + good, "invalid UTF-8", "BAD,1"},
		{"ControlCharInString", "{\"id\":1,\"updated_at\":10,\"s\":\"a\tb\"}\n" + good, "control character", "BAD,1"},
		{"TooDeep", `{"id":1,"updated_at":1,"x":` + strings.Repeat("[", maxDepth+5) + strings.Repeat("]", maxDepth+5) + "}\n" + good, "nesting deeper", "BAD,1"},
	}
	for _, tt := range tests {
		for _, rm := range readMakers {
			t.Run(tt.name+"/"+rm.name, func(t *testing.T) {
				d := NewDecoder(rm.fn(strings.NewReader(tt.input)), DecoderOptions{})
				for d.Next() {
				}
				var bad *BadRecordError
				if !errors.As(d.Err(), &bad) {
					t.Fatalf("err = %v, want *BadRecordError", d.Err())
				}
				if !strings.Contains(bad.Reason, tt.reason) || bad.Offset != 0 || len(bad.Snippet) == 0 {
					t.Fatalf("got %+v, want reason %q at offset 0 with a snippet", bad, tt.reason)
				}
				got := decodeAll(rm.fn(strings.NewReader(tt.input)), DecoderOptions{}, true)
				if got.err != nil || strings.Join(got.keys, ",") != tt.keys {
					t.Fatalf("skipping: keys %q err %v, want %q", got.keys, got.err, tt.keys)
				}
			})
		}
	}
}

func TestDecoder_TruncatedFinalRecord(t *testing.T) {
	in := `{"id":1,"updated_at":10}` + "\n" + `{"id":2,"updated_at":1`
	for _, rm := range readMakers {
		got := decodeAll(rm.fn(strings.NewReader(in)), DecoderOptions{}, false)
		if !errors.Is(got.err, ErrTruncated) || strings.Join(got.keys, ",") != "1" {
			t.Fatalf("%s: keys %q err %v, want [1] and ErrTruncated", rm.name, got.keys, got.err)
		}
	}
}

// A body that ends inside a record which straddles the end of the
// decoder's first buffer, with EOF arriving on a read of its own.
func TestDecoder_TruncatedAcrossTheBufferEnd(t *testing.T) {
	rec := `{"id":1,"updated_at":10}` + "\n"
	var b strings.Builder
	for b.Len()+len(rec) <= 64<<10-22 {
		b.WriteString(rec)
	}
	b.WriteString(strings.Repeat(" ", 64<<10-22-b.Len()) + `{"id":2,"updated_at":1`)
	got := decodeAll(strings.NewReader(b.String()), DecoderOptions{}, false)
	if !errors.Is(got.err, ErrTruncated) {
		t.Fatalf("err %v, want ErrTruncated", got.err)
	}
}

func TestDecoder_MaxRecordSize(t *testing.T) {
	big := `{"id":1,"updated_at":10,"pad":"` + strings.Repeat("x", 5000) + `"}`
	in := big + "\n" + `{"id":2,"updated_at":11}` + "\n"
	for _, rm := range readMakers {
		got := decodeAll(rm.fn(strings.NewReader(in)), DecoderOptions{MaxRecordSize: 1000}, true)
		if got.err != nil || strings.Join(got.keys, ",") != "BAD,2" {
			t.Fatalf("%s: keys %q err %v, want BAD,2", rm.name, got.keys, got.err)
		}
	}
}

// An endless line must be refused in bounded memory, not buffered.
func TestDecoder_EndlessRecordBoundedMemory(t *testing.T) {
	r := io.MultiReader(strings.NewReader(`{"id":1,"updated_at":1,"s":"`), &repeatReader{b: 'a', n: 64 << 20})
	d := NewDecoder(r, DecoderOptions{MaxRecordSize: 1 << 20})
	if d.Next() {
		t.Fatal("got a record from an endless string")
	}
	var bad *BadRecordError
	if !errors.As(d.Err(), &bad) || !strings.Contains(bad.Reason, "limit") {
		t.Fatalf("err = %v, want a size-limit BadRecordError", d.Err())
	}
	if d.Next() || d.Err() != nil {
		t.Fatalf("after skipping: err = %v", d.Err())
	}
	if len(d.buf) > 4<<20 {
		t.Fatalf("buffer grew to %d bytes for a 1 MiB limit", len(d.buf))
	}
}

type repeatReader struct {
	b byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n)
	for i := range p[:n] {
		p[i] = r.b
	}
	r.n -= n
	return n, nil
}

// Splitting one stream at every byte position must give identical records.
func TestDecoder_SplitAtEveryOffset(t *testing.T) {
	in, err := readTestdata("framing.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	want := decodeAll(bytes.NewReader(in), DecoderOptions{}, true)
	if len(want.records) < 5 {
		t.Fatalf("testdata too small: %d records", len(want.records))
	}
	for i := 0; i <= len(in); i++ {
		got := decodeAll(io.MultiReader(bytes.NewReader(in[:i]), bytes.NewReader(in[i:])), DecoderOptions{}, true)
		if strings.Join(got.records, "\x00") != strings.Join(want.records, "\x00") || strings.Join(got.keys, ",") != strings.Join(want.keys, ",") {
			t.Fatalf("split at %d: keys %q, want %q", i, got.keys, want.keys)
		}
	}
}

func TestDecoder_Offset(t *testing.T) {
	in := "\n\n" + `{"id":1,"updated_at":1}` + "  " + `{"id":2,"updated_at":2}`
	d := NewDecoder(iotest.OneByteReader(strings.NewReader(in)), DecoderOptions{})
	var offs []int64
	for d.Next() {
		offs = append(offs, d.Record().Offset)
	}
	if len(offs) != 2 || offs[0] != 2 || offs[1] != 27 {
		t.Fatalf("offsets = %v, want [2 27]", offs)
	}
}

// With back-to-back framing, a bad value hides nothing after it on its
// line, nor, with no newlines at all, the rest of the stream: decoding goes
// on at the next object, and each bad value is counted once.
func TestDecoder_BadValueMidLine(t *testing.T) {
	r := func(id int) string { return fmt.Sprintf(`{"id":%d,"updated_at":%d}`, id, id) }
	for _, tt := range []struct {
		name, bad string
		bads      int
	}{
		{"a bad literal", `{"id":2,"updated_at":2,"up":tru}`, 1},
		{"an array", `[1,2]`, 1},
		{"an array of objects", `[{"updated_at":3},{"x":{"y":1}}]`, 1},
		{"garbage", `garbage`, 1},
		{"a string", `"a string"`, 1},
		{"a number", `42`, 1},
		{"one brace too many", r(2) + `}`, 1},
		{"a bracket left open", `{"id":2,"updated_at":2,"x":[1,2}`, 1},
		{"a nested object after the error", `{"id":2,"updated_at":2,"x":tru,"y":{"a":1}}`, 1},
		{"a record that is not one", `{"updated_at":2}`, 1},
	} {
		for _, sep := range []string{"", " ", "\n"} {
			in := r(1) + sep + tt.bad + sep + r(3) + sep + r(4) + sep
			t.Run(tt.name+fmt.Sprintf("/%q", sep), func(t *testing.T) {
				for _, rm := range readMakers {
					keys, bad, err := decodeKeys(rm.fn(strings.NewReader(in)))
					want := "1,3,4"
					if tt.name == "one brace too many" {
						want = "1,2,3,4"
					}
					if keys != want || bad != tt.bads || err != nil {
						t.Fatalf("%s: %q: keys %s, %d bad, err %v; want %s and %d bad", rm.name, in, keys, bad, err, want, tt.bads)
					}
				}
			})
		}
	}
	// An unterminated string eats what follows it up to the next object
	// boundary it can see: record 3 is inside it, record 4 is not.
	in := r(1) + `{"id":2,"updated_at":2,"x":"unterminated}` + r(3) + r(4)
	if keys, bad, err := decodeKeys(strings.NewReader(in)); keys != "1,4" || bad != 1 || err != nil {
		t.Fatalf("keys %s, %d bad, err %v", keys, bad, err)
	}
}

func decodeKeys(r io.Reader) (string, int, error) {
	d := NewDecoder(r, DecoderOptions{})
	var keys []string
	bad := 0
	for {
		for d.Next() {
			keys = append(keys, string(d.Record().Key))
		}
		var be *BadRecordError
		if !errors.As(d.Err(), &be) {
			return strings.Join(keys, ","), bad, d.Err()
		}
		bad++
	}
}

// A UTF-8 byte order mark before the body is not a bad record.
func TestDecoder_ByteOrderMark(t *testing.T) {
	for _, rm := range readMakers {
		t.Run(rm.name, func(t *testing.T) {
			d := NewDecoder(rm.fn(strings.NewReader("\xEF\xBB\xBF"+`{"id":1,"updated_at":1}`+"\n")), DecoderOptions{})
			if !d.Next() || string(d.Record().Key) != "1" || d.Record().Offset != 3 {
				t.Fatalf("no record 1 after the BOM: err %v", d.Err())
			}
			if d.Next() || d.Err() != nil {
				t.Fatalf("err %v", d.Err())
			}
		})
	}
}

// plainRunSlow is plainRun a byte at a time.
func plainRunSlow(b []byte, i int) int {
	for i < len(b) && plain[b[i]] {
		i++
	}
	return i
}

// plainRun stops where a byte at a time would, whichever byte stops it and
// wherever it lies in a word, and at the end of the buffer.
func TestPlainRun(t *testing.T) {
	for c := range 256 {
		for at := range 20 {
			for _, n := range []int{at + 1, at + 9, 24} {
				b := bytes.Repeat([]byte("a"), n)
				b[at] = byte(c)
				for from := range min(n, 10) {
					if got, want := plainRun(b, from), plainRunSlow(b, from); got != want {
						t.Fatalf("byte %#x at %d of %d, from %d: plainRun gave %d, want %d", c, at, n, from, got, want)
					}
				}
			}
		}
	}
}

// Several stopping bytes in a word: borrows between them must not move
// the first.
func TestPlainRun_Mixed(t *testing.T) {
	alphabet := []byte{0, 0x1f, 0x20, 0x21, '"', '#', '[', '\\', ']', 0x7f, 0x80, 0xff, 'a'}
	rnd := rand.New(rand.NewPCG(7, 8))
	b := make([]byte, 32)
	for range 200_000 {
		for i := range b {
			b[i] = 'a'
			if rnd.IntN(4) == 0 {
				b[i] = alphabet[rnd.IntN(len(alphabet))]
			}
		}
		from := rnd.IntN(len(b))
		if got, want := plainRun(b, from), plainRunSlow(b, from); got != want {
			t.Fatalf("%q from %d: plainRun gave %d, want %d", b, from, got, want)
		}
	}
}
