// Command pgserve runs a throwaway PostgreSQL cluster (package pgtest) for
// make bench: it prints the DSN on stdout and stops the cluster when stdin
// closes or it is interrupted.
package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/lockstep/lockstep/internal/pgtest"
)

func main() {
	c, err := pgtest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgserve:", err)
		os.Exit(1)
	}
	defer c.Stop()
	fmt.Println(c.DSN)
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
	case <-done:
	}
}
