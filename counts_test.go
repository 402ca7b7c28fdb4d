package main

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lockstep/lockstep/state"
)

// The mass-deletion refusal counts as the rest of the CLI does, and keeps
// what wrapped it.
func TestRunAdvice_MassDeleteCounts(t *testing.T) {
	var md error = &state.MassDeleteError{Remove: 97000, Of: 98000, Limit: 0.5}
	for _, err := range []error{md, fmt.Errorf("replica: %w", md)} {
		got := runAdvice(nil, err)
		want := "resync would remove 97,000 of 98,000 records (99%), more than --max-delete 50% allows"
		if !strings.Contains(got.Error(), want) || !strings.Contains(got.Error(), "--max-delete 100%") {
			t.Errorf("got %q, want %q and the way out", got, want)
		}
		if err != md && !strings.HasPrefix(got.Error(), "replica: ") {
			t.Errorf("lost the context: %q", got)
		}
		var back *state.MassDeleteError
		if !errors.As(got, &back) {
			t.Errorf("%q no longer a *state.MassDeleteError", got)
		}
	}
	one := runAdvice(nil, &state.MassDeleteError{Remove: 1, Of: 1, Limit: 0})
	if !strings.Contains(one.Error(), "remove 1 of 1 record (100%)") {
		t.Errorf("got %q", one)
	}
}
