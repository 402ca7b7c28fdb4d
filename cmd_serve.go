package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/lockstep/lockstep/endpoint"
	"github.com/lockstep/lockstep/follow"
	"github.com/urfave/cli/v2"
)

var serveCommand = &cli.Command{
	Name:      "serve",
	Usage:     "serve a JSONL file as a lockstep endpoint",
	ArgsUsage: "FILE",
	Description: `Serves the records of FILE by the lockstep protocol (docs/protocol.md): those
changed since the cursor (the last path segment, or ?since=), inclusive,
sorted by order value, tombstones left out for cursor 0. The response stays
open and streams every line appended to FILE while it runs (like tail -f),
with a blank line after each --heartbeat of silence, unless --finite.

Examples:
   lockstep serve testdata/servers.jsonl
   lockstep serve --addr 127.0.0.1:0 --heartbeat 5s servers.jsonl   # prints the URL it chose`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "addr", Value: "127.0.0.1:4567", Usage: "listen on this `HOST:PORT` (port 0: any free one)", EnvVars: env("addr"),
			Action: listenAddr("addr", "4567")},
		&cli.BoolFlag{Name: "finite", Usage: "end each response after the backlog", EnvVars: env("finite")},
		&cli.DurationFlag{Name: "heartbeat", Value: endpoint.DefaultHeartbeat, Usage: "send a blank line after this much silence (0: never)", EnvVars: env("heartbeat"),
			Action: nonNegative("heartbeat")},
		&cli.BoolFlag{Name: "gzip", Usage: "compress responses for clients that accept gzip", EnvVars: env("gzip")},
		&cli.StringFlag{Name: "since-param", Value: "since", Usage: "query parameter that carries the cursor", EnvVars: env("since-param")},
		fieldFlags[0], fieldFlags[1], fieldFlags[2],
		logFlags[0], logFlags[1], logFlags[2],
	},
	Action: runServe,
}

func runServe(c *cli.Context) error {
	path, err := oneArg(c, "FILE")
	if err != nil {
		return err
	}
	if strings.TrimSpace(path) == "" {
		return flagError(c, "the FILE argument is empty; want the JSON lines file to serve")
	}
	heartbeat := c.Duration("heartbeat")
	if heartbeat == 0 {
		heartbeat = -1 // endpoint.Options: never
	}
	srv := endpoint.New(endpoint.Options{
		Fields:     follow.DecoderOptions{Key: c.String("key"), OrderBy: c.String("order-by"), Deleted: c.String("deleted-field")},
		SinceParam: c.String("since-param"),
		Finite:     c.Bool("finite"),
		Heartbeat:  heartbeat,
		Gzip:       c.Bool("gzip"),
	})
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	off, err := srv.Load(file)
	file.Close()
	if err != nil {
		return fmt.Errorf("serve %s: %w", path, err)
	}
	ln, err := net.Listen("tcp", c.String("addr"))
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	watchErr := make(chan error, 1)
	go func() {
		watchErr <- endpoint.WatchFile(ctx, path, off, srv, func(err error) {
			logOf(c).warn(fmt.Sprintf("serve: skipped %v", err), "err", err.Error())
		})
		cancel()
	}()
	var handler http.Handler = srv
	if log := logOf(c); log.verbose() {
		// -v: each request as it comes, the query's secrets redacted.
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			shown := follow.Redact(r.URL.RequestURI())
			log.debug(fmt.Sprintf("< %s %s from %s", r.Method, shown, r.RemoteAddr), "method", r.Method, "url", shown, "remote", r.RemoteAddr)
			srv.ServeHTTP(w, r)
		})
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	logOf(c).changed(fmt.Sprintf("serving %s (%s %s) on http://%s/", path, thousands(srv.Len()), plural(srv.Len(), "record", "records"), ln.Addr()),
		"file", path, "records", srv.Len(), "addr", ln.Addr().String())
	go func() {
		<-ctx.Done()
		srv.Close()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		hs.Shutdown(sctx)
	}()
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	select {
	case err := <-watchErr:
		if err != nil {
			return fmt.Errorf("serve %s: %w", path, err)
		}
	default:
	}
	return nil
}
