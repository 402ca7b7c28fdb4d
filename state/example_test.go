package state_test

import (
	"fmt"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/state"
)

// A Table applies records last writer wins: stale updates are ignored and
// tombstones delete.
func ExampleTable() {
	t := state.NewTable()
	for _, s := range []string{
		`{"id":2,"updated_at":10,"deleted_at":null,"ip":"10.0.0.2"}`,
		`{"id":1,"updated_at":11,"deleted_at":null,"ip":"10.0.0.1"}`,
		`{"id":2,"updated_at":9,"deleted_at":null,"ip":"stale"}`,
		`{"id":3,"updated_at":12,"deleted_at":null}`,
		`{"id":3,"updated_at":13,"deleted_at":13}`,
	} {
		r, _ := follow.ParseRecord([]byte(s), follow.DecoderOptions{})
		fmt.Println(t.Apply(&r))
	}
	for _, rec := range t.All() {
		fmt.Println(string(rec))
	}
	// Output:
	// insert
	// insert
	// none
	// insert
	// delete
	// {"id":1,"updated_at":11,"deleted_at":null,"ip":"10.0.0.1"}
	// {"id":2,"updated_at":10,"deleted_at":null,"ip":"10.0.0.2"}
}
