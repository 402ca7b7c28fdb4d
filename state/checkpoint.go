package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/lockstep/lockstep/follow"
)

// A Checkpoint is what sync remembers beside its snapshot (PROTOCOL 8):
// where to resume, and how fresh the replica is.
type Checkpoint struct {
	Endpoint      string // redacted URL
	Key           string // field names
	OrderBy       string
	Deleted       string
	Cursor        follow.Order // exact JSON text; zero before any record
	CursorKeys    []string     // JSON texts of the keys applied at Cursor
	Records       int          // live records in the snapshot written with it
	CaughtUpAt    time.Time
	LastContactAt time.Time
}

// checkpointFile is the on-disk form. The cursor and keys are kept as raw
// JSON so that 1700000000123456789 never passes through a float64.
type checkpointFile struct {
	Version       int               `json:"version"`
	Endpoint      string            `json:"endpoint"`
	Key           string            `json:"key"`
	OrderBy       string            `json:"order_by"`
	Deleted       string            `json:"deleted_field"`
	Cursor        json.RawMessage   `json:"cursor"`
	Records       int               `json:"records"`
	CaughtUpAt    *time.Time        `json:"caught_up_at"`
	LastContactAt *time.Time        `json:"last_contact_at"`
	CursorKeys    []json.RawMessage `json:"cursor_keys"`
}

const checkpointVersion = 1

// CheckpointPath is where the checkpoint of a snapshot lives.
func CheckpointPath(snapshot string) string { return snapshot + ".checkpoint" }

// WriteCheckpoint atomically replaces path with c.
func WriteCheckpoint(path string, perm fs.FileMode, c *Checkpoint) error {
	cf := checkpointFile{
		Version: checkpointVersion, Endpoint: c.Endpoint,
		Key: c.Key, OrderBy: c.OrderBy, Deleted: c.Deleted,
		Cursor: json.RawMessage("null"), Records: c.Records,
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
	head, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return err
	}
	// The keys can number millions after a bulk update: write them without
	// building a second copy, one per line.
	head = bytes.TrimSuffix(head, []byte("null\n}"))
	return writeFileAtomic(path, perm, func(w io.Writer) error {
		if _, err := w.Write(head); err != nil {
			return err
		}
		io.WriteString(w, "[")
		for i, k := range c.CursorKeys {
			if i > 0 {
				io.WriteString(w, ",")
			}
			io.WriteString(w, "\n    ")
			if _, err := io.WriteString(w, k); err != nil {
				return err
			}
		}
		_, err := io.WriteString(w, "\n  ]\n}\n")
		return err
	})
}

// ReadCheckpoint reads the checkpoint at path. A missing file is
// fs.ErrNotExist.
func ReadCheckpoint(path string) (*Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cf checkpointFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return nil, fmt.Errorf("%s: damaged checkpoint: %v (use --resync to rebuild)", path, err)
	}
	if cf.Version != checkpointVersion {
		return nil, fmt.Errorf("%s: checkpoint version %d, this lockstep reads version %d", path, cf.Version, checkpointVersion)
	}
	c := &Checkpoint{Endpoint: cf.Endpoint, Key: cf.Key, OrderBy: cf.OrderBy, Deleted: cf.Deleted, Records: cf.Records}
	if cur := bytes.TrimSpace(cf.Cursor); len(cur) > 0 && string(cur) != "null" {
		if cur[0] != '"' && (cur[0] < '0' || cur[0] > '9') && cur[0] != '-' {
			return nil, fmt.Errorf("%s: damaged checkpoint: cursor %s is not a number or string", path, cur)
		}
		c.Cursor = follow.Order(cur)
	}
	for _, k := range cf.CursorKeys {
		c.CursorKeys = append(c.CursorKeys, string(bytes.TrimSpace(k)))
	}
	if cf.CaughtUpAt != nil {
		c.CaughtUpAt = *cf.CaughtUpAt
	}
	if cf.LastContactAt != nil {
		c.LastContactAt = *cf.LastContactAt
	}
	return c, nil
}

// A MismatchError is a checkpoint written for another endpoint or other
// field names than the ones given now.
type MismatchError struct {
	What     string // "endpoint", "key field", …
	Was, Now string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("checkpoint was written for %s %s, not %s", e.What, e.Was, e.Now)
}

// Check returns a *MismatchError unless c was written for this endpoint
// (redacted) and these field names.
func (c *Checkpoint) Check(endpoint string, f follow.DecoderOptions) error {
	for _, m := range []MismatchError{
		{"endpoint", c.Endpoint, endpoint},
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
