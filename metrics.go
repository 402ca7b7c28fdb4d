package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lockstep/lockstep/follow"
	"github.com/lockstep/lockstep/replica"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"
)

// metricsFlags are for the commands that keep running: sync --follow, tail.
var metricsFlags = []cli.Flag{
	&cli.StringFlag{Name: "metrics", Usage: "serve Prometheus metrics on `ADDR` (host:port) at /metrics, and /healthz (200 while fresh, else 503)", EnvVars: env("metrics"), Category: "Monitoring",
		Action: listenAddr("metrics", "9100")},
	&cli.DurationFlag{Name: "health-max-age", Aliases: []string{"max-age"}, Value: time.Minute, Usage: "with --metrics: /healthz answers 503 once the replica has not been caught up for this long (--max-age, as for dump)", EnvVars: env("health-max-age"), Category: "Monitoring",
		Action: positive("health-max-age")},
}

// listenAddr is the Action of a flag that names an address to listen on:
// HOST:PORT, where HOST may be empty (every interface) and PORT 0 (any
// free one).
func listenAddr(name, example string) func(*cli.Context, string) error {
	return func(c *cli.Context, addr string) error {
		_, port, err := net.SplitHostPort(addr)
		if err == nil {
			if n, perr := strconv.Atoi(port); perr != nil || n < 0 || n > 65535 {
				err = fmt.Errorf("port %q is not a number from 0 to 65535", port)
			}
		}
		if err != nil {
			return flagError(c, "%s: want HOST:PORT, such as 127.0.0.1:%s or :%s", valueSource(c, name, addr), example, example)
		}
		return nil
	}
}

// metrics are a following engine's Prometheus metrics. Every field is
// safe for concurrent use: the engine updates them on its goroutine and
// the server reads them on its own.
type metrics struct {
	reg          *prometheus.Registry
	applied      *prometheus.CounterVec
	reconnects   prometheus.Counter
	errors       *prometheus.CounterVec
	bytes        prometheus.Counter
	writeSeconds prometheus.Histogram
	lagSeconds   prometheus.Histogram
	lastContact  prometheus.Gauge
	lastCaughtUp prometheus.Gauge
	caughtUp     prometheus.Gauge
	records      prometheus.Gauge

	maxAge     time.Duration
	caughtUpAt atomic.Int64 // unix nanoseconds, for /healthz
	seen       replica.Stats
	// live counts the records held, for a replica that is never
	// committed (tail's): read on the engine's goroutine.
	live func() int
}

func newMetrics(maxAge time.Duration) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lockstep_records_applied_total",
			Help: "Records that changed the replica, by kind: insert, update, delete."}, []string{"kind"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "lockstep_reconnects_total",
			Help: "Responses that began after one or more failed attempts."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lockstep_errors_total",
			Help: "Failed attempts that were retried, by cause: http_<status>, refused, reset, timeout, dns, tls, truncated, other."}, []string{"cause"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "lockstep_received_bytes_total",
			Help: "Bytes of response bodies read (after gzip)."}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lockstep_write_duration_seconds",
			Help: "Time to write the snapshot and checkpoint (one commit).", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}),
		lagSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lockstep_commit_lag_seconds",
			Help: "From the arrival of the oldest change in a commit to the end of that commit.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),
		lastContact: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockstep_last_contact_timestamp_seconds",
			Help: "When the endpoint was last heard from (a response or bytes), Unix time."}),
		lastCaughtUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockstep_last_caught_up_timestamp_seconds",
			Help: "When the replica was last as current as the endpoint, Unix time."}),
		caughtUp: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockstep_caught_up",
			Help: "1 while the replica is caught up with the endpoint, else 0."}),
		records: prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockstep_records",
			Help: "Live records in the replica (tail: the live keys it tracks)."}),
		maxAge: maxAge,
	}
	m.reg.MustRegister(m.applied, m.reconnects, m.errors, m.bytes, m.writeSeconds, m.lagSeconds,
		m.lastContact, m.lastCaughtUp, m.caughtUp, m.records)
	for _, kind := range []string{"insert", "update", "delete"} {
		m.applied.WithLabelValues(kind)
	}
	return m
}

// startMetrics serves --metrics, if given, until ctx is done. It returns
// nil metrics without the flag; every method of nil metrics does nothing.
func startMetrics(ctx context.Context, c *cli.Context) (*metrics, error) {
	addr := c.String("metrics")
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	m := newMetrics(c.Duration("health-max-age"))
	srv := &http.Server{Handler: m.handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	logOf(c).info(fmt.Sprintf("metrics on http://%s/metrics, health on http://%s/healthz", ln.Addr(), ln.Addr()), "addr", ln.Addr().String())
	return m, nil
}

func (m *metrics) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ok, msg := m.health(time.Now())
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, msg+"\n")
	})
	return mux
}

// health says whether the replica is fresh: caught up within maxAge.
func (m *metrics) health(now time.Time) (bool, string) {
	n := m.caughtUpAt.Load()
	if n == 0 {
		return false, "not caught up yet"
	}
	age := now.Sub(time.Unix(0, n))
	if age > m.maxAge {
		return false, fmt.Sprintf("stale: last caught up %s ago, more than --health-max-age %s", age.Round(time.Second), m.maxAge)
	}
	return true, fmt.Sprintf("ok: caught up %s ago", age.Round(time.Second))
}

// attach chains the metrics into an engine's callbacks and a transport.
func (m *metrics) attach(cfg *replica.Config) {
	if m == nil {
		return
	}
	cfg.Notify = chain(cfg.Notify, m.notice)
	cfg.Progress = chain(cfg.Progress, m.progress)
	cfg.Committed = chain(cfg.Committed, m.committed)
	if t := watched(cfg.Follow); t != nil {
		t.onBytes = func(n int) { m.bytes.Add(float64(n)) }
	}
}

// countLive makes lockstep_records count the records e holds, for an
// engine that keeps them in memory and never commits them.
func (m *metrics) countLive(e *replica.Engine) {
	if m != nil {
		m.live = e.Len
	}
}

// chain calls a, if any, then b.
func chain[T any](a, b func(T)) func(T) {
	if a == nil {
		return b
	}
	return func(v T) { a(v); b(v) }
}

func (m *metrics) notice(n replica.Notice) {
	switch n.Kind {
	case replica.NoticeRetry:
		m.errors.WithLabelValues(cause(n.Err)).Inc()
		m.caughtUp.Set(0)
	case replica.NoticeResync:
		m.caughtUp.Set(0)
	case replica.NoticeReconnected:
		m.reconnects.Inc()
	case replica.NoticeCaughtUp:
		m.setCaughtUp(time.Now())
	}
}

func (m *metrics) setCaughtUp(at time.Time) {
	m.caughtUp.Set(1)
	m.lastCaughtUp.Set(float64(at.UnixNano()) / 1e9)
	m.caughtUpAt.Store(at.UnixNano())
}

func (m *metrics) progress(st replica.Stats) {
	m.applied.WithLabelValues("insert").Add(float64(st.Inserts - m.seen.Inserts))
	m.applied.WithLabelValues("update").Add(float64(st.Updates - m.seen.Updates))
	m.applied.WithLabelValues("delete").Add(float64(st.Deletes - m.seen.Deletes))
	m.seen = st
	if m.live != nil {
		m.records.Set(float64(m.live()))
	}
	if !st.LastContact.IsZero() {
		m.lastContact.Set(float64(st.LastContact.UnixNano()) / 1e9)
	}
	if st.CaughtUp {
		m.setCaughtUp(st.CaughtUpAt)
	} else {
		m.caughtUp.Set(0)
	}
}

func (m *metrics) committed(c replica.Commit) {
	m.writeSeconds.Observe(c.Duration.Seconds())
	if c.Changed() {
		m.lagSeconds.Observe(c.Lag.Seconds())
	}
	m.records.Set(float64(c.Records))
}

// cause names why an attempt failed, for the errors metric.
func cause(err error) string {
	var se *follow.StatusError
	var dns *net.DNSError
	var ne net.Error
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("http_%d", se.Code)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	case errors.As(err, &dns):
		return "dns"
	case errors.As(err, &ua), errors.As(err, &he):
		return "tls"
	case errors.Is(err, follow.ErrTruncated):
		return "truncated"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other"
}
