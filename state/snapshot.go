package state

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/lockstep/lockstep/follow"
)

// WriteSnapshot atomically replaces path with the table's live records as
// JSON Lines: one record per line, exactly the bytes received, sorted by
// key, each line ending in a newline. An empty table is an empty file. A new
// file gets perm; an existing one keeps its permissions.
func (t *Table) WriteSnapshot(path string, perm fs.FileMode) error {
	return writeFileAtomic(path, perm, func(w io.Writer) error {
		for _, rec := range t.All() {
			if _, err := w.Write(rec); err != nil {
				return err
			}
			if _, err := w.Write(nl); err != nil {
				return err
			}
		}
		return nil
	})
}

var nl = []byte{'\n'}

// A SnapshotError is a snapshot file that is not what WriteSnapshot
// writes. Loading refuses it whole rather than keep what came before the
// damage.
type SnapshotError struct {
	Path   string
	Line   int
	Reason string
}

func (e *SnapshotError) Error() string {
	return fmt.Sprintf("%s:%d: damaged snapshot: %s (fix or remove it, or rebuild it with lockstep sync --resync)", e.Path, e.Line, e.Reason)
}

// ReadSnapshot loads the snapshot at path into t, which should be empty,
// validating every line: one record each, live, with the configured fields,
// keys strictly ascending, and a final newline. On error t holds an
// unspecified part of the file. A missing file is fs.ErrNotExist.
func (t *Table) ReadSnapshot(path string, fields follow.DecoderOptions) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	// Into an empty table, the checked order makes every key new and the
	// entries come in key order: no look-ups, and no sort before the next
	// write.
	fresh := t.entries.len() == 0
	if fresh {
		defer t.indexNew()
	}
	var prev []byte
	for line := 1; ; line++ {
		b, err := readLine(br)
		if err == io.EOF {
			if len(b) > 0 {
				return &SnapshotError{path, line, "last line has no newline (truncated?)"}
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, line, err)
		}
		rec, perr := follow.ParseRecord(b, fields)
		if perr != nil {
			return &SnapshotError{path, line, perr.Error()}
		}
		if len(rec.Bytes) != len(b) {
			return &SnapshotError{path, line, "whitespace around the record"}
		}
		if rec.Deleted {
			return &SnapshotError{path, line, "a tombstone (snapshots hold live records only)"}
		}
		if prev != nil && CompareKeys(prev, rec.Key) >= 0 {
			return &SnapshotError{path, line, fmt.Sprintf("key %s is not after %s (duplicate or out of order)", rec.Key, prev)}
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
