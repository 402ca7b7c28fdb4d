package main

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lockstep/lockstep/replica"
)

// progress tells the user what an engine is doing: its notices, through
// the logger, and, on a terminal, a progress line that it keeps redrawing.
type progress struct {
	log    *logger
	chatty bool   // say when caught up
	name   string // what the progress line is of
	engine *replica.Engine
	// swept says how many keys a resync removed, in the command's terms.
	swept string
	// retryFor is the --retry-for of a command that finishes, said with
	// its first retry; "" for one that follows.
	retryFor string
	bytes    *atomic.Int64 // bytes received, if counted
	follow   bool          // say whether catching up or following, and when things last happened

	retried    bool
	lastRedraw time.Time
	// The recent rate: records applied over the last few seconds, not
	// since the start, so a follower's line says what it does now.
	rateAt      time.Time
	rateApplied int
	rate        float64
	measured    bool // rate holds a measurement
	lastApplied int
	lastChange  time.Time
}

func (p *progress) notice(n replica.Notice) {
	switch n.Kind {
	case replica.NoticeRetry:
		msg := fmt.Sprintf("retrying in %s: %v", roundDelay(n.Delay), n.Err)
		if p.retryFor != "" && !p.retried {
			msg += fmt.Sprintf(" (giving up after --retry-for %s)", p.retryFor)
		}
		p.retried = true
		p.log.warn(msg, "delay", n.Delay, "err", n.Err.Error())
	case replica.NoticeReconnected:
		p.log.info(fmt.Sprintf("reconnected after %s %s, %s", thousands(n.Count), plural(n.Count, "try", "tries"), roundDelay(n.Delay)),
			"tries", n.Count, "after", n.Delay)
	case replica.NoticeResync:
		if n.Err != nil {
			p.log.warn(fmt.Sprintf("full resync from cursor 0: %v", n.Err), "err", n.Err.Error())
		}
	case replica.NoticeBadRecord:
		p.log.warn(fmt.Sprintf("warning: skipped %v", n.Err), "err", n.Err.Error())
	case replica.NoticeWarning:
		p.log.warn(fmt.Sprintf("warning: %v", n.Err), "err", n.Err.Error())
	case replica.NoticeSwept:
		format := p.swept
		if format == "" {
			format = "resync removed %s the endpoint no longer has"
		}
		p.log.changed(fmt.Sprintf(format, thousands(n.Count)+" "+plural(n.Count, "record", "records")), "removed", n.Count)
	case replica.NoticeCursorBack:
		p.log.warn(fmt.Sprintf("resync: cursor moved back from %s to %s (was the endpoint restored or reset?)", cursorText(n.Previous), cursorText(n.Cursor)),
			"previous", cursorText(n.Previous), "cursor", cursorText(n.Cursor))
	case replica.NoticeCaughtUp:
		if p.chatty {
			p.log.info("caught up at cursor "+cursorText(n.Cursor), "cursor", cursorText(n.Cursor))
		}
	}
}

// update redraws the progress line, at most ten times a second.
func (p *progress) update(st replica.Stats) {
	if !p.log.live || p.engine == nil {
		return
	}
	now := time.Now()
	if st.Applied != p.lastApplied {
		p.lastApplied, p.lastChange = st.Applied, now
	}
	p.sampleRate(now, st.Applied)
	if now.Sub(p.lastRedraw) < 100*time.Millisecond {
		return
	}
	p.lastRedraw = now
	p.log.progress(p.line(st))
}

// sampleRate keeps a moving average of the rate over about 5 seconds.
func (p *progress) sampleRate(now time.Time, applied int) {
	if p.rateAt.IsZero() {
		p.rateAt, p.rateApplied = now, applied
		return
	}
	dt := now.Sub(p.rateAt).Seconds()
	if dt < 0.5 {
		return
	}
	r := float64(applied-p.rateApplied) / dt
	w := min(dt/5, 1)
	if !p.measured {
		// The first measurement is the average: nothing came before it.
		w, p.measured = 1, true
	}
	p.rate = p.rate*(1-w) + r*w
	p.rateAt, p.rateApplied = now, applied
}

// rateText is the recent rate, "1,234/s", or "" before it is measured.
func (p *progress) rateText() string {
	if !p.measured {
		return ""
	}
	return thousands(int(p.rate)) + "/s"
}

func (p *progress) line(st replica.Stats) string {
	parts := []string{thousands(p.engine.Len()) + " " + plural(p.engine.Len(), "record", "records")}
	if p.follow {
		state := "catching up"
		if st.CaughtUp {
			state = "following"
		}
		parts = append(parts, state)
	}
	if r := p.rateText(); r != "" {
		parts = append(parts, r)
	}
	if p.bytes != nil {
		parts = append(parts, byteSize(p.bytes.Load()))
	}
	parts = append(parts, "cursor "+cursorText(p.engine.Cursor()))
	if p.follow {
		if !p.lastChange.IsZero() {
			parts = append(parts, "last change "+p.lastChange.Format("15:04:05"))
		}
		if !st.LastCommit.IsZero() {
			parts = append(parts, "last write "+st.LastCommit.Format("15:04:05"))
		}
	}
	return p.name + ": " + strings.Join(parts, ", ")
}

// byteSize says n bytes for a person: 980 B, 12.3 MB.
func byteSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
