package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/lockstep/lockstep/state"
)

// waitFor opens a locked file store with open, first without waiting, so
// that a --wait that has to wait can say for which process.
func waitFor[T any](log *logger, path string, wait bool, open func(wait bool) (T, error)) (T, error) {
	s, err := open(false)
	if !wait || !errors.Is(err, state.ErrLocked) {
		return s, err
	}
	holder := "the process that holds " + state.LockPath(path)
	if pid := state.LockHolder(path); pid != 0 {
		holder = fmt.Sprintf("pid %d, which holds %s", pid, state.LockPath(path))
		log.info("--wait: waiting for "+holder, "pid", pid)
	} else {
		log.info("--wait: waiting for " + holder)
	}
	s, err = open(true)
	if errors.Is(err, context.Canceled) {
		return s, fmt.Errorf("interrupted while waiting for %s; nothing was done", holder)
	}
	return s, err
}
