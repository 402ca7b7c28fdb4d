package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"time"

	"github.com/lockstep/lockstep/follow"
)

// Kinds of checkpoint: each is refused where the other is expected, so that
// a tail cursor file can never move a snapshot's cursor past its records.
const (
	KindSync = "sync" // beside a snapshot, binding it
	KindTail = "tail" // a cursor file of lockstep tail
)

// A Checkpoint is what sync remembers beside its snapshot, and tail in its
// cursor file (PROTOCOL 8): where to resume, and how fresh the replica is.
type Checkpoint struct {
	Kind       string // KindSync or KindTail; "" in a version 1 file
	Endpoint   string // the URL, redacted: for display only
	EndpointID string // follow.EndpointID: what the replica is of
	Key        string // field names
	OrderBy    string
	Deleted    string
	Cursor     follow.Order       // exact JSON text; zero before any record
	CursorKeys []follow.CursorKey // the keys applied at Cursor, with digests
	Snapshot   SnapshotID         // the snapshot this checkpoint goes with (KindSync)
	// Next is the snapshot that was about to replace Snapshot when this
	// checkpoint was written, and NextCursor the cursor that goes with it:
	// a crash between the two renames leaves Next in place with this
	// checkpoint, and the next run resumes from NextCursor (after a
	// resync it may be below Cursor). Zero when none was.
	Next          SnapshotID
	NextCursor    follow.Order
	CaughtUpAt    time.Time
	LastContactAt time.Time
}

// A SnapshotID identifies the contents of a snapshot file, so that a
// checkpoint is never used with a snapshot it was not written with.
type SnapshotID struct {
	Size    int64
	Records int
	Digest  uint64 // XXH64 of the whole file
	// ModTime is the file's modification time once written: while it is
	// unchanged, the file is taken to be unchanged without reading it.
	// Not part of the identity: Same ignores it.
	ModTime time.Time
}

// Same reports whether s and o identify the same contents.
func (s SnapshotID) Same(o SnapshotID) bool {
	return s.Size == o.Size && s.Records == o.Records && s.Digest == o.Digest
}

func (s SnapshotID) String() string {
	return fmt.Sprintf("%d records, %d bytes, digest %016x", s.Records, s.Size, s.Digest)
}

// checkpointFile is the on-disk form. The cursor and keys are kept as raw
// JSON so that 1700000000123456789 never passes through a float64.
type checkpointFile struct {
	Version       int             `json:"version"`
	Kind          string          `json:"kind,omitempty"`
	Endpoint      string          `json:"endpoint"`
	EndpointID    string          `json:"endpoint_id,omitempty"`
	Key           string          `json:"key"`
	OrderBy       string          `json:"order_by"`
	Deleted       string          `json:"deleted_field"`
	Cursor        json.RawMessage `json:"cursor"`
	Records       int             `json:"records"`
	Snapshot      *snapshotFile   `json:"snapshot,omitempty"`
	Next          *snapshotFile   `json:"next_snapshot,omitempty"`
	NextCursor    json.RawMessage `json:"next_cursor,omitempty"`
	CaughtUpAt    *time.Time      `json:"caught_up_at"`
	LastContactAt *time.Time      `json:"last_contact_at"`
	// Version 1: keys only. Version 2: [key, "digest"] pairs.
	CursorKeys []json.RawMessage `json:"cursor_keys"`
}

type snapshotFile struct {
	Size    int64      `json:"size"`
	Records int        `json:"records,omitempty"` // in next_snapshot; the checkpoint's own is top-level
	Digest  string     `json:"xxh64"`
	ModTime *time.Time `json:"mtime,omitempty"`
}

func (s SnapshotID) file() *snapshotFile {
	f := &snapshotFile{Size: s.Size, Records: s.Records, Digest: fmt.Sprintf("%016x", s.Digest)}
	if !s.ModTime.IsZero() {
		t := s.ModTime.UTC()
		f.ModTime = &t
	}
	return f
}

func (f *snapshotFile) id() (SnapshotID, error) {
	if f == nil {
		return SnapshotID{}, nil
	}
	id := SnapshotID{Size: f.Size, Records: f.Records}
	if f.ModTime != nil {
		id.ModTime = *f.ModTime
	}
	d, err := strconv.ParseUint(f.Digest, 16, 64)
	if err != nil {
		return SnapshotID{}, fmt.Errorf("snapshot digest %q is not hexadecimal", f.Digest)
	}
	id.Digest = d
	return id, nil
}

const checkpointVersion = 2

// CheckpointPath is where the checkpoint of a snapshot lives.
func CheckpointPath(snapshot string) string { return snapshot + ".checkpoint" }

// WriteCheckpoint atomically replaces path with c.
func WriteCheckpoint(path string, perm fs.FileMode, c *Checkpoint) error {
	_, err := writeFileAtomic(path, perm, func(w *aheadWriter) error { return EncodeCheckpoint(w, c) }, nil)
	return err
}

// EncodeCheckpoint writes c to w as WriteCheckpoint writes it to a file:
// one JSON object, and the keys at the cursor one per line.
func EncodeCheckpoint(w io.Writer, c *Checkpoint) error {
	cf := checkpointFile{
		Version: checkpointVersion, Kind: c.Kind, Endpoint: c.Endpoint, EndpointID: c.EndpointID,
		Key: c.Key, OrderBy: c.OrderBy, Deleted: c.Deleted,
		Cursor: json.RawMessage("null"), Records: c.Snapshot.Records,
	}
	if c.Kind == KindSync {
		cf.Snapshot = c.Snapshot.file()
		cf.Snapshot.Records = 0 // the top-level "records", read by older versions too
		if c.Next != (SnapshotID{}) {
			cf.Next = c.Next.file()
			cf.NextCursor = json.RawMessage("null")
			if c.NextCursor != "" {
				cf.NextCursor = json.RawMessage(c.NextCursor)
			}
		}
	}
	if c.Cursor != "" {
		cf.Cursor = json.RawMessage(c.Cursor)
	}
	if !c.CaughtUpAt.IsZero() {
		t := c.CaughtUpAt.UTC()
		cf.CaughtUpAt = &t
	}
	if !c.LastContactAt.IsZero() {
		t := c.LastContactAt.UTC()
		cf.LastContactAt = &t
	}
	// Not json.Marshal: it would escape & < > in a cursor, which must stay
	// the exact JSON text received.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cf); err != nil {
		return err
	}
	// The keys can number millions after a bulk update: write them without
	// building a second copy, one per line.
	head := bytes.TrimSuffix(buf.Bytes(), []byte("null\n}\n"))
	if _, err := w.Write(head); err != nil {
		return err
	}
	io.WriteString(w, "[")
	var line []byte
	for i, k := range c.CursorKeys {
		line = line[:0]
		if i > 0 {
			line = append(line, ',')
		}
		line = append(line, "\n    ["...)
		line = append(line, k.Key...)
		line = append(line, `, "`...)
		line = strconv.AppendUint(line, k.Digest, 16)
		line = append(line, `"]`...)
		if _, err := w.Write(line); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, "\n  ]\n}\n")
	return err
}

// A DamagedError is a checkpoint file that cannot be read.
type DamagedError struct {
	Path   string
	Reason string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("%s: damaged checkpoint: %s", e.Path, e.Reason)
}

// ReadCheckpoint reads the checkpoint at path. A missing file is
// fs.ErrNotExist; one that cannot be read is a *DamagedError.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return DecodeCheckpoint(b, path)
}

// DecodeCheckpoint reads what EncodeCheckpoint wrote; path names where it
// came from in errors. Damage is a *DamagedError.
func DecodeCheckpoint(b []byte, path string) (*Checkpoint, error) {
	var err error
	var cf checkpointFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return nil, &DamagedError{path, err.Error()}
	}
	if cf.Version != 1 && cf.Version != checkpointVersion {
		return nil, fmt.Errorf("%s: checkpoint version %d, this lockstep reads versions 1 and %d", path, cf.Version, checkpointVersion)
	}
	c := &Checkpoint{Kind: cf.Kind, Endpoint: cf.Endpoint, EndpointID: cf.EndpointID,
		Key: cf.Key, OrderBy: cf.OrderBy, Deleted: cf.Deleted}
	if c.Snapshot, err = cf.Snapshot.id(); err != nil {
		return nil, &DamagedError{path, err.Error()}
	}
	c.Snapshot.Records = cf.Records
	if c.Next, err = cf.Next.id(); err != nil {
		return nil, &DamagedError{path, err.Error()}
	}
	if cur := bytes.TrimSpace(cf.NextCursor); len(cur) > 0 && string(cur) != "null" {
		if !isScalarKey(cur) {
			return nil, &DamagedError{path, fmt.Sprintf("next cursor %s is not a number or string", cur)}
		}
		c.NextCursor = follow.Order(cur)
	}
	if cur := bytes.TrimSpace(cf.Cursor); len(cur) > 0 && string(cur) != "null" {
		if !isScalarKey(cur) {
			return nil, &DamagedError{path, fmt.Sprintf("cursor %s is not a number or string", cur)}
		}
		c.Cursor = follow.Order(cur)
	}
	for _, raw := range cf.CursorKeys {
		k, err := cursorKey(bytes.TrimSpace(raw), cf.Version)
		if err != nil {
			return nil, &DamagedError{path, err.Error()}
		}
		c.CursorKeys = append(c.CursorKeys, k)
	}
	if cf.CaughtUpAt != nil {
		c.CaughtUpAt = *cf.CaughtUpAt
	}
	if cf.LastContactAt != nil {
		c.LastContactAt = *cf.LastContactAt
	}
	return c, nil
}

func isScalarKey(b []byte) bool {
	return len(b) > 0 && (b[0] == '"' || b[0] == '-' || b[0] >= '0' && b[0] <= '9')
}

// cursorKey reads one entry of cursor_keys: the key's JSON text in version
// 1, a [key, "digest"] pair in version 2.
func cursorKey(raw []byte, version int) (follow.CursorKey, error) {
	if version == 1 {
		if !isScalarKey(raw) {
			return follow.CursorKey{}, fmt.Errorf("cursor key %s is not a number or string", raw)
		}
		return follow.CursorKey{Key: string(raw)}, nil
	}
	var pair []json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 || !isScalarKey(pair[0]) {
		return follow.CursorKey{}, fmt.Errorf("cursor key %s is not a [key, \"digest\"] pair", raw)
	}
	var hex string
	if err := json.Unmarshal(pair[1], &hex); err != nil {
		return follow.CursorKey{}, fmt.Errorf("cursor key %s: digest is not a string", raw)
	}
	d, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		return follow.CursorKey{}, fmt.Errorf("cursor key %s: digest %q is not hexadecimal", raw, hex)
	}
	return follow.CursorKey{Key: string(bytes.TrimSpace(pair[0])), Digest: d}, nil
}

// A MismatchError is a checkpoint written for another endpoint, other field
// names or another kind of file than the ones given now.
type MismatchError struct {
	What     string // "endpoint", "key field", "kind", …
	Was, Now string
}

func (e *MismatchError) Error() string {
	if e.What == "kind" {
		return fmt.Sprintf("this is a %s, not a %s", kindName(e.Was), kindName(e.Now))
	}
	return fmt.Sprintf("checkpoint was written for %s %s, not %s", e.What, e.Was, e.Now)
}

func kindName(k string) string {
	if k == KindTail {
		return "lockstep tail cursor file"
	}
	return "lockstep sync checkpoint"
}

// ErrMismatch is what every *MismatchError matches with errors.Is.
var ErrMismatch = errors.New("state: checkpoint mismatch")

func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// Check returns a *MismatchError unless c is of the given kind and was
// written for this endpoint and these field names. The endpoint is compared
// by its ID (endpoint is for display); a version 1 checkpoint, which has no
// ID, by the display form.
func (c *Checkpoint) Check(kind, endpointID, endpoint string, f follow.DecoderOptions) error {
	was := c.Kind
	if was == "" {
		was = KindSync
	}
	if was != kind {
		return &MismatchError{"kind", was, kind}
	}
	sameEndpoint := c.EndpointID == endpointID
	if c.EndpointID == "" {
		sameEndpoint = c.Endpoint == endpoint
	}
	if !sameEndpoint {
		now := endpoint
		if c.Endpoint == endpoint {
			// The display forms agree: what differs is hidden from them.
			now += " (the same once redacted, but another URL)"
		}
		return &MismatchError{"endpoint", c.Endpoint, now}
	}
	for _, m := range []MismatchError{
		{"key field", c.Key, f.Key},
		{"order field", c.OrderBy, f.OrderBy},
		{"deleted field", c.Deleted, f.Deleted},
	} {
		if m.Was != m.Now {
			return &m
		}
	}
	return nil
}
