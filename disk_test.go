package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lockstep/lockstep/follow/followtest"
)

// mountTmpfs mounts a small tmpfs, which needs root; elsewhere the state
// package's injected-failure tests cover the same paths.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); state's injected ENOSPC tests cover this", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func bigRecords(n int, pad int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, strings.TrimSuffix(line(i, i, `,"pad":"`+strings.Repeat("x", pad)+`"`), "\n"))
	}
	return out
}

// A full disk: sync fails clearly, the previous files stay as they were,
// and no temp file is left; with room again, it converges.
func TestSync_DiskFull(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, "2m")
	out := filepath.Join(dir, "s.jsonl")
	srv := followtest.NewUnstartedServer(bigRecords(100, 1000)...)
	srv.Finite = true
	srv.Start()
	defer srv.Close()
	if r := lockstep(t, "sync", srv.URL+"/", "--out", out); r.code != 0 {
		t.Fatal(r.stderr)
	}
	snap, cp := readFile(t, out), readFile(t, out+".checkpoint")
	srv.Append(bigRecords(2500, 1000)[100:]...) // 2.5 MB: no room for the new snapshot
	r := lockstep(t, "sync", srv.URL+"/", "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, "no space left on device") || !strings.Contains(r.stderr, "write snapshot") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if readFile(t, out) != snap || readFile(t, out+".checkpoint") != cp {
		t.Fatal("a failed write changed the files")
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
	exec.Command("mount", "-o", "remount,size=8m", dir).Run()
	if r := lockstep(t, "sync", srv.URL+"/", "--out", out); r.code != 0 || strings.Count(readFile(t, out), "\n") != 2500 {
		t.Fatalf("with room again: %d %s", r.code, r.stderr)
	}
}

func TestSync_ReadOnlyFolder(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, "4m")
	out := filepath.Join(dir, "s.jsonl")
	srv := followtest.NewUnstartedServer(bigRecords(10, 10)...)
	srv.Finite = true
	srv.Start()
	defer srv.Close()
	if r := lockstep(t, "sync", srv.URL+"/", "--out", out); r.code != 0 {
		t.Fatal(r.stderr)
	}
	snap := readFile(t, out)
	if err := exec.Command("mount", "-o", "remount,ro", dir).Run(); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	defer exec.Command("mount", "-o", "remount,rw", dir).Run()
	srv.Append(bigRecords(11, 10)[10])
	r := lockstep(t, "sync", srv.URL+"/", "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, "read-only file system") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if readFile(t, out) != snap {
		t.Fatal("snapshot changed")
	}
}

// The folder disappears under a running sync --follow: it stops with a
// clear error rather than carry on with nowhere to write.
func TestSync_FolderDisappears(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "replica")
	os.Mkdir(dir, 0o755)
	out := filepath.Join(dir, "s.jsonl")
	srv := followtest.NewUnstartedServer(bigRecords(10, 10)...)
	srv.Heartbeat = 50 * time.Millisecond
	srv.Start()
	defer srv.Close()
	cmd, _, stderr := start(t, "sync", "--follow", "--flush-interval", "50ms", "--idle", "200ms", srv.URL+"/", "--out", out)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(out + ".checkpoint"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint; stderr %s", stderr.String())
		}
	}
	os.RemoveAll(dir)
	srv.Append(bigRecords(11, 10)[10])
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "no such file or directory") {
			t.Fatalf("exit %v: %s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("sync --follow still running with its folder gone; stderr %s", stderr.String())
	}
}

// A full disk under a SQLite replica: the transaction fails clearly, the
// database keeps its last commit, and with room again sync converges.
func TestSync_DiskFullSQLite(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, "2m")
	out := "sqlite:" + filepath.Join(dir, "s.db")
	srv := followtest.NewUnstartedServer(bigRecords(100, 1000)...)
	srv.Finite = true
	srv.Start()
	defer srv.Close()
	if r := lockstep(t, "sync", srv.URL+"/", "--out", out); r.code != 0 {
		t.Fatal(r.stderr)
	}
	before := lockstep(t, "dump", out)
	srv.Append(bigRecords(2500, 1000)[100:]...)
	r := lockstep(t, "sync", srv.URL+"/", "--out", out)
	if r.code != 1 || !strings.Contains(r.stderr, "full") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if after := lockstep(t, "dump", out); after.code != 0 || after.stdout != before.stdout {
		t.Fatalf("a failed transaction changed the replica (dump exit %d: %s)", after.code, after.stderr)
	}
	exec.Command("mount", "-o", "remount,size=16m", dir).Run()
	if r := lockstep(t, "sync", srv.URL+"/", "--out", out); r.code != 0 {
		t.Fatalf("with room again: %d %s", r.code, r.stderr)
	}
	if d := lockstep(t, "dump", out); strings.Count(d.stdout, "\n") != 2500 {
		t.Fatalf("with room again: %d records", strings.Count(d.stdout, "\n"))
	}
}
