package follow

import (
	"bytes"
	"fmt"
	"testing"
)

// benchStream is n records of about 100 bytes with distinct keys.
func benchStream(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"id":%d,"updated_at":%d,"deleted_at":null,"name":"host-%07d","ip":"10.%d.%d.%d","port":%d}`+"\n",
			i, 1700000000000+i, i, i>>16&255, i>>8&255, i&255, 1024+i%50000)
	}
	return b.Bytes()
}

func BenchmarkDecoder(b *testing.B) {
	data := benchStream(100_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		d := NewDecoder(bytes.NewReader(data), DecoderOptions{})
		n := 0
		for d.Next() {
			n++
		}
		if d.Err() != nil || n != 100_000 {
			b.Fatalf("n=%d err=%v", n, d.Err())
		}
	}
}
