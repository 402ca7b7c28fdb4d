// Package sample makes the record streams that tests, fuzzers and
// benchmarks share: generated records of the benchmark's shape, and the
// seed corpora kept in testdata/fuzz.
package sample

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Records is n records of about 113 bytes with distinct keys and rising
// order values, one per line: the shape of make bench.
func Records(n int) []byte { return records(n, func(i int) int { return i }) }

// Shuffled is Records with the keys in a scattered order, the order of
// make bench's second data set: key i*7919 mod n + 1 on line i (a
// permutation unless n is a multiple of the prime 7919).
func Shuffled(n int) []byte { return records(n, func(i int) int { return i*7919%n + 1 }) }

func records(n int, key func(int) int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		k := key(i)
		fmt.Fprintf(&b, `{"id":%d,"updated_at":%d,"deleted_at":null,"name":"host-%07d","ip":"10.%d.%d.%d","port":%d}`+"\n",
			k, 1700000000000+i, k, k>>16&255, k>>8&255, k&255, 1024+k%50000)
	}
	return b.Bytes()
}

// FuzzSeeds adds to f every file of testdata/fuzz whose name starts with
// prefix.
func FuzzSeeds(f *testing.F, prefix string) {
	_, here, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(here), "..", "..", "testdata", "fuzz")
	paths, err := filepath.Glob(filepath.Join(dir, prefix+"*"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds %s* in %s", prefix, dir)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}
