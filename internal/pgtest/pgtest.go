// Package pgtest starts a throwaway PostgreSQL cluster for tests: initdb in
// a temporary folder, a free loopback port, trust authentication, stopped
// and removed by the function it returns. initdb refuses to run as root, so
// as root the cluster runs as the postgres user (or nobody).
//
// Without PostgreSQL on the machine, Start returns ErrMissing, and tests
// skip, saying so loudly, unless LOCKSTEP_REQUIRE_POSTGRES is set (as CI
// sets it): then they fail.
package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrMissing means no PostgreSQL server binaries were found.
var ErrMissing = errors.New("pgtest: no PostgreSQL here (initdb and pg_ctl not found; apt-get install postgresql)")

// Required reports whether tests must not skip for want of PostgreSQL.
func Required() bool { return os.Getenv("LOCKSTEP_REQUIRE_POSTGRES") != "" }

// A Cluster is a running throwaway PostgreSQL.
type Cluster struct {
	DSN     string // postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
	Port    int
	dir     string
	bin     string
	asUser  string
	ctlArgs []string
}

// bindir finds initdb and pg_ctl: on the PATH, else in Debian's folders.
func bindir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "initdb")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Strings(dirs)
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i], nil
		}
	}
	return "", ErrMissing
}

// Start starts a cluster.
func Start() (*Cluster, error) {
	bin, err := bindir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lockstep-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		c.asUser = "nobody"
		if _, err := user.Lookup("postgres"); err == nil {
			c.asUser = "postgres"
		}
		u, err := user.Lookup(c.asUser)
		if err != nil {
			return nil, err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		os.Chmod(dir, 0o700)
	}
	data := filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		c.Stop()
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if c.Port, err = freePort(); err != nil {
		c.Stop()
		return nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", c.Port, dir)
	if out, err := c.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		c.Stop()
		return nil, fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	c.ctlArgs = []string{"-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60"}
	c.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
	return c, nil
}

// Restart stops the server (fast: open connections are cut) and starts it
// again on the same port, as an operator's restart would.
func (c *Cluster) Restart() error {
	if out, err := c.run("pg_ctl", "-D", c.ctlArgs[1], "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	if out, err := c.run("pg_ctl", append(c.ctlArgs, "start")...); err != nil {
		return fmt.Errorf("pg_ctl start: %v\n%s", err, out)
	}
	return nil
}

// Stop stops the server and removes its folder.
func (c *Cluster) Stop() {
	if c.ctlArgs != nil {
		c.run("pg_ctl", "-D", c.ctlArgs[1], "-m", "immediate", "-w", "stop")
	}
	os.RemoveAll(c.dir)
}

func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.Bytes(), err
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		return out.Bytes(), fmt.Errorf("%s %s: still running after 2m", name, strings.Join(args, " "))
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
