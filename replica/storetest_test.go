package replica_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/replica"
	"github.com/lockstep/lockstep/replica/storetest"
	"github.com/lockstep/lockstep/state"
)

// The JSONL store passes the suite every store passes.
func TestFileStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Place {
		out := filepath.Join(t.TempDir(), "s.jsonl")
		return storetest.Place{
			Open: func(t *testing.T) replica.Store {
				s, err := replica.OpenFile(context.Background(), out, replica.FileOptions{Perm: state.ModeShared})
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			Read: func(t *testing.T) []string {
				tb, _, err := replica.ReadFile(out, func(*state.Checkpoint) (f follow.DecoderOptions) { return f })
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, rec := range tb.All() {
					out = append(out, string(rec))
				}
				return out
			},
		}
	})
}
