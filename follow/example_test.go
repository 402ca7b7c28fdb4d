package follow_test

import (
	"fmt"
	"strings"

	"github.com/lockstep/lockstep/follow"
)

// A Decoder takes whatever framing an endpoint uses and keeps each record's
// exact bytes.
func ExampleDecoder() {
	body := `{"id":1,"updated_at":10,"deleted_at":null}{"id":2,"updated_at":11,"deleted_at":11}` + "\r\n\n" +
		`{"id":"a", "updated_at":1700000000123456789}`
	d := follow.NewDecoder(strings.NewReader(body), follow.DecoderOptions{})
	for d.Next() {
		r := d.Record()
		fmt.Printf("key %s order %s deleted %v at byte %d\n", r.Key, r.Order, r.Deleted, r.Offset)
	}
	if err := d.Err(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// key 1 order 10 deleted false at byte 0
	// key 2 order 11 deleted true at byte 42
	// key "a" order 1700000000123456789 deleted false at byte 85
}

// Order values compare exactly, never through float64.
func ExampleOrder_Compare() {
	a, b := follow.Order("9007199254740993"), follow.Order("9007199254740992")
	fmt.Println(a.Compare(b), follow.Order("1.0").Compare("1"), follow.Order(`"2024-05-02"`).Compare(`"2024-05-01"`))
	// Output: 1 0 1
}
