package main

import (
	"strings"
	"testing"
	"time"
)

// The progress line shows no rate before there is a measurement, and
// the first measurement as it is, not averaged with a zero that was
// never measured.
func TestProgress_RateFromTheFirstMeasurement(t *testing.T) {
	p := &progress{}
	if got := p.rateText(); got != "" {
		t.Errorf("before any sample: %q, want no rate", got)
	}
	t0 := time.Now()
	p.sampleRate(t0, 0)
	if got := p.rateText(); got != "" {
		t.Errorf("after one sample: %q, want no rate", got)
	}
	p.sampleRate(t0.Add(time.Second), 1000)
	if got := p.rateText(); got != "1,000/s" {
		t.Errorf("after 1,000 records in 1s: %q, want 1,000/s", got)
	}
	// Then a moving average: a second of 2,000/s moves it part of the way.
	p.sampleRate(t0.Add(2*time.Second), 3000)
	if got := p.rate; got <= 1000 || got >= 2000 {
		t.Errorf("after a second at 2,000/s: %v, want between", got)
	}
	if got := p.rateText(); !strings.HasSuffix(got, "/s") {
		t.Errorf("%q", got)
	}
}
