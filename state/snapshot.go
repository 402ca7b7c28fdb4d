package state

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/cespare/xxhash/v2"
	"github.com/lockstep/lockstep/follow"
)

// WriteSnapshot atomically replaces path with the table's live records as
// JSON Lines: one record per line, exactly the bytes received, sorted by
// key, each line ending in a newline. An empty table is an empty file. A new
// file gets perm; an existing one keeps its permissions. It returns what
// identifies the file written, for the checkpoint to bind.
func (t *Table) WriteSnapshot(path string, perm fs.FileMode) (SnapshotID, error) {
	return t.ReplaceSnapshot(path, perm, nil)
}

// ReplaceSnapshot is WriteSnapshot with a step in between: once the new
// snapshot is durable beside path, and before it replaces it, prepare (if
// not nil) is called with its ID, so that a checkpoint can say which
// snapshot is about to be in place. If prepare fails, path is untouched.
func (t *Table) ReplaceSnapshot(path string, perm fs.FileMode, prepare func(SnapshotID) error) (SnapshotID, error) {
	var records int
	id := func(sum fileSum) SnapshotID { return SnapshotID{Size: sum.size, Records: records, Digest: sum.digest} }
	sum, err := writeFileAtomic(path, perm, func(w *aheadWriter) error {
		for _, rec := range t.All() {
			if err := w.writeLine(rec); err != nil {
				return err
			}
			records++
		}
		return nil
	}, func(sum fileSum) error {
		if prepare == nil {
			return nil
		}
		return prepare(id(sum))
	})
	if err != nil {
		return SnapshotID{}, err
	}
	return id(sum), nil
}

// A SnapshotError is a snapshot file that is not what WriteSnapshot
// writes. Loading refuses it whole rather than keep what came before the
// damage.
type SnapshotError struct {
	Path   string
	Line   int
	Reason string
}

func (e *SnapshotError) Error() string {
	return fmt.Sprintf("%s:%d: damaged snapshot: %s", e.Path, e.Line, e.Reason)
}

// ReadSnapshot loads the snapshot at path into t, which should be empty,
// validating every line: one record each, live, with the configured fields,
// keys strictly ascending, and a final newline. It returns what identifies
// the file read, to compare with the checkpoint's. On error t holds an
// unspecified part of the file. A missing file is fs.ErrNotExist.
func (t *Table) ReadSnapshot(path string, fields follow.DecoderOptions) (SnapshotID, error) {
	f, err := openNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		return SnapshotID{}, err
	}
	defer f.Close()
	h := xxhash.New()
	br := bufio.NewReaderSize(io.TeeReader(f, h), 1<<20)
	// Into an empty table, the checked order makes every key new and the
	// records come in key order: no look-ups, and no sort before the next
	// write.
	fresh := t.Len() == 0 && t.Tombstones() == 0
	var prev []byte
	var id SnapshotID
	p := follow.NewParser(fields)
	for line := 1; ; line++ {
		b, err := readLine(br)
		if err == io.EOF {
			if len(b) > 0 {
				return id, &SnapshotError{path, line, "last line has no newline (truncated?)"}
			}
			id.Digest = h.Sum64()
			return id, nil
		}
		if err != nil {
			return id, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		id.Size += int64(len(b)) + 1
		id.Records++
		rec, perr := p.Parse(b)
		if perr != nil {
			return id, &SnapshotError{path, line, perr.Error()}
		}
		if len(rec.Bytes) != len(b) {
			return id, &SnapshotError{path, line, "whitespace around the record"}
		}
		if rec.Deleted {
			return id, &SnapshotError{path, line, "a tombstone (snapshots hold live records only)"}
		}
		if prev != nil && CompareKeys(prev, rec.Key) >= 0 {
			return id, &SnapshotError{path, line, fmt.Sprintf("key %s is not after %s (duplicate or out of order)", rec.Key, prev)}
		}
		if fresh {
			t.appendNew(&rec)
		} else {
			t.Apply(&rec)
		}
		prev = append(prev[:0], rec.Key...)
	}
}

// readLine returns the next line without its newline; at the end of input
// it returns what remains with io.EOF.
func readLine(br *bufio.Reader) ([]byte, error) {
	b, err := br.ReadSlice('\n')
	if err == nil {
		return b[:len(b)-1], nil
	}
	if !errors.Is(err, bufio.ErrBufferFull) {
		return b, err
	}
	long := bytes.Clone(b)
	for {
		b, err = br.ReadSlice('\n')
		long = append(long, b...)
		if err == nil {
			return long[:len(long)-1], nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return long, err
		}
	}
}
