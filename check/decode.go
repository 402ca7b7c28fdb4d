package check

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/lockstep/lockstep/follow"
)

// A record is one object of a response, copied out of the decoder.
type record struct {
	offset  int64
	end     int64 // offset of the byte after the object
	key     string
	order   string
	deleted bool
	bytes   []byte
	delRaw  []byte // the deleted field's JSON text; nil when absent
}

// decoded is a response's body taken apart.
type decoded struct {
	records   []record
	bad       []*follow.BadRecordError
	truncated int64 // offset of a record the body ended inside; -1: none
}

// decode reads body with lockstep's own decoder, so that check judges what a
// follower would see. ended says the body ended there: a partial record at
// the end is then a truncation, not just the rest yet to come.
func decode(body []byte, ended bool, fields follow.DecoderOptions) decoded {
	d := decoded{truncated: -1}
	dec := follow.NewDecoder(bytes.NewReader(body), fields)
	deleted := fields.Deleted
	if deleted == "" {
		deleted = "deleted_at"
	}
	for {
		if dec.Next() {
			r := dec.Record()
			rec := record{
				offset: r.Offset, end: r.Offset + int64(len(r.Bytes)),
				key: string(r.Key), order: string(r.Order), deleted: r.Deleted,
				bytes: append([]byte(nil), r.Bytes...),
			}
			var fieldsOf map[string]json.RawMessage
			if json.Unmarshal(r.Bytes, &fieldsOf) == nil {
				if v, ok := fieldsOf[deleted]; ok {
					rec.delRaw = v
				}
			}
			d.records = append(d.records, rec)
			continue
		}
		var bad *follow.BadRecordError
		switch err := dec.Err(); {
		case errors.As(err, &bad):
			d.bad = append(d.bad, bad)
			continue
		case errors.Is(err, follow.ErrTruncated) && ended:
			// The unfinished object starts after the last whole one.
			var from int64
			if n := len(d.records); n > 0 {
				from = d.records[n-1].end
			}
			from += int64(len(body[from:]) - len(bytes.TrimLeft(body[from:], " \t\r\n")))
			d.truncated = from
		}
		return d
	}
}
