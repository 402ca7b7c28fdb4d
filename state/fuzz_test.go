package state

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/internal/sample"
)

// FuzzReadSnapshot: any file either loads or is refused; one that loads is
// exactly what WriteSnapshot writes for the table it gave.
func FuzzReadSnapshot(f *testing.F) {
	sample.FuzzSeeds(f, "snapshot")
	f.Fuzz(func(t *testing.T, in []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "s.jsonl")
		os.WriteFile(path, in, 0o644)
		tb := NewTable()
		if _, err := tb.ReadSnapshot(path, follow.DecoderOptions{}); err != nil {
			return
		}
		out := filepath.Join(dir, "out.jsonl")
		if _, err := tb.WriteSnapshot(out, 0o644); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(out); string(got) != string(in) {
			t.Fatalf("loaded %q, wrote back %q", in, got)
		}
	})
}

// FuzzReadCheckpoint: any file either loads or is refused; one that loads
// writes back to a file that loads the same.
func FuzzReadCheckpoint(f *testing.F) {
	sample.FuzzSeeds(f, "checkpoint")
	f.Fuzz(func(t *testing.T, in []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "c")
		os.WriteFile(path, in, 0o644)
		c, err := ReadCheckpoint(path)
		if err != nil {
			return
		}
		if err := WriteCheckpoint(path, 0o644, c); err != nil {
			t.Fatal(err)
		}
		back, err := ReadCheckpoint(path)
		if err != nil {
			t.Fatalf("wrote back an unreadable checkpoint from %q: %v", in, err)
		}
		if back.Cursor != c.Cursor || len(back.CursorKeys) != len(c.CursorKeys) || back.Endpoint != c.Endpoint {
			t.Fatalf("round trip of %q: %+v, was %+v", in, back, c)
		}
	})
}
