package main

import (
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
	if pid := state.LockHolder(path); pid != 0 {
		log.info(fmt.Sprintf("--wait: waiting for pid %d, which holds %s", pid, state.LockPath(path)), "pid", pid)
	} else {
		log.info(fmt.Sprintf("--wait: waiting for the process that holds %s", state.LockPath(path)))
	}
	return open(true)
}
