package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The redaction gaps of issue 8, through the binary: passwords that break
// URL parsing, a token as the user name, secret query names beyond the
// obvious ones, names added with --redact, malformed -H values.
func TestSecretsNeverShown_Gaps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 1))
	base := serve(t, src, "--finite")
	hostPort := strings.TrimPrefix(base, "http://")
	refused := "127.0.0.1:1" // nothing listens: every run prints the URL in its error
	runs := []result{
		lockstep(t, "tail", "--once", "http://erin:PASSWORD1#x@"+refused+"/"),
		lockstep(t, "tail", "--once", "http://erin:PASSWORD2/x@"+refused+"/"),
		lockstep(t, "tail", "--once", "http://erin:PASSWORD3?x@"+refused+"/"),
		lockstep(t, "tail", "--once", "--retry-for", "200ms", "http://ghp_PASSWORD4@"+refused+"/"),
		lockstep(t, "tail", "--once", "--retry-for", "200ms", "http://"+refused+"/?sig=PASSWORD5&pass=PASSWORD6&X-Amz-Signature=PASSWORD7&jwt=PASSWORD10"),
		lockstep(t, "tail", "--once", "--retry-for", "200ms", "--redact", "tenant", "--redact", "X-Org", "http://"+refused+"/?tenant=PASSWORD8&x_org=PASSWORD9"),
		lockstep(t, "tail", "--once", "-H", "X-Org PASSWORD11", "--redact", "x-org", base+"/"),
		lockstep(t, "tail", "--once", "-H", "PASSWORD12", base+"/"),
		lockstep(t, "sync", "--user", "PASSWORD13", "--out", filepath.Join(dir, "s.jsonl"), "--retry-for", "200ms", "http://"+refused+"/"),
		lockstep(t, "dump", "http://erin:PASSWORD14%zz@"+hostPort+"/"),
	}
	var all strings.Builder
	for _, r := range runs {
		if r.code == 0 {
			t.Errorf("exit 0: %s", r.stderr)
		}
		all.WriteString(r.stdout + r.stderr)
	}
	if m := regexp.MustCompile(`PASSWORD\d+`).FindAllString(all.String(), -1); m != nil {
		t.Fatalf("secrets shown: %v\n%s", m, all.String())
	}
	for _, want := range []string{"erin:***@", "http://***@127.0.0.1:1/", "sig=***", "tenant=***", "x_org=***", "-H \"***: ***\""} {
		if !strings.Contains(all.String(), want) {
			t.Errorf("%q not shown:\n%s", want, all.String())
		}
	}
}

// Files another user could plant, symlinked and odd --out paths, temp
// files a crash left, through the binary.
func TestSync_FileSafety(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 1))
	url := serve(t, src, "--finite") + "/"
	want := line(1, 1)

	t.Run("PlantedLockSymlink", func(t *testing.T) {
		out, victim := filepath.Join(dir, "p.jsonl"), filepath.Join(dir, "victim")
		writeFile(t, victim, "precious\n")
		must(t, os.Symlink(victim, out+".lock"))
		r := lockstep(t, "sync", url, "--out", out)
		if r.code != 1 || !strings.Contains(r.stderr, out+".lock is a symbolic link") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if readFile(t, victim) != "precious\n" {
			t.Fatal("the lock was written through the link")
		}
	})

	t.Run("SymlinkedOut", func(t *testing.T) {
		realDir := filepath.Join(dir, "data")
		must(t, os.Mkdir(realDir, 0o755))
		link, target := filepath.Join(dir, "link.jsonl"), filepath.Join(realDir, "s.jsonl")
		must(t, os.Symlink("data/s.jsonl", link)) // dangling until the first sync
		for _, out := range []string{link, link, target} {
			if r := lockstep(t, "sync", url, "--out", out); r.code != 0 {
				t.Fatalf("--out %s: exit %d: %s", out, r.code, r.stderr)
			}
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("the link was replaced: %v %v", fi, err)
		}
		if readFile(t, target) != want {
			t.Fatalf("target: %q", readFile(t, target))
		}
		for _, f := range []string{target + ".lock", target + ".checkpoint"} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
		for _, f := range []string{link + ".lock", link + ".checkpoint"} {
			if _, err := os.Lstat(f); err == nil {
				t.Errorf("%s written beside the link", f)
			}
		}
	})

	t.Run("OutIsAFolder", func(t *testing.T) {
		folder := filepath.Join(dir, "folder")
		must(t, os.Mkdir(folder, 0o755))
		for _, out := range []string{folder, folder + "/"} {
			r := lockstep(t, "sync", url, "--out", out)
			if r.code != 1 || !strings.Contains(r.stderr, "is a folder") {
				t.Fatalf("--out %s: exit %d: %s", out, r.code, r.stderr)
			}
		}
		for _, f := range []string{folder + ".lock", filepath.Join(folder, ".lock")} {
			if _, err := os.Lstat(f); err == nil {
				t.Errorf("%s left behind", f)
			}
		}
	})

	t.Run("MissingFolder", func(t *testing.T) {
		missing := filepath.Join(dir, "missing")
		r := lockstep(t, "sync", url, "--out", filepath.Join(missing, "s.jsonl"))
		if r.code != 1 || !strings.Contains(r.stderr, "folder "+missing+": no such file") || strings.Contains(r.stderr, ".lock") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	})

	t.Run("StaleTempsRemoved", func(t *testing.T) {
		out := filepath.Join(dir, "t.jsonl")
		stale := []string{".t.jsonl.tmp-1234567890", ".t.jsonl.checkpoint.tmp-0123456789abcdef"}
		kept := ".t.jsonl.tmp-notes.txt"
		for _, f := range append(stale, kept) {
			writeFile(t, filepath.Join(dir, f), "junk")
		}
		r := lockstep(t, "sync", url, "--out", out)
		if r.code != 0 || !strings.Contains(r.stderr, "removed 2 temp files") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		for _, f := range stale {
			if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
				t.Errorf("%s left", f)
			}
		}
		if _, err := os.Lstat(filepath.Join(dir, kept)); err != nil {
			t.Errorf("%s removed", kept)
		}
	})

	t.Run("Help", func(t *testing.T) {
		if r := lockstep(t, "sync", "--help"); !strings.Contains(r.stdout, "symbolic link") {
			t.Fatalf("sync --help says nothing of links:\n%s", r.stdout)
		}
	})
}

// New files get 0666 less the umask; existing files keep their mode;
// --private makes them 0600, existing ones too.
func TestSync_Permissions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "src.jsonl")
	writeFile(t, src, line(1, 1))
	url := serve(t, src, "--finite") + "/"
	withUmask := func(umask string, args ...string) {
		t.Helper()
		// The umask is the shell's to set: lockstep must take it as given.
		cmd := exec.Command("sh", append([]string{"-c", "umask " + umask + ` && exec "$0" "$@"`, binary}, args...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("umask %s lockstep %v: %v\n%s", umask, args, err, b)
		}
	}
	modes := func(out string) string {
		var s []string
		for _, f := range []string{out, out + ".checkpoint"} {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			s = append(s, fmt.Sprintf("%o", fi.Mode().Perm()))
		}
		return strings.Join(s, " ")
	}
	for _, tt := range []struct {
		umask, want string
	}{{"077", "600 600"}, {"002", "664 664"}, {"022", "644 644"}} {
		out := filepath.Join(dir, "u"+tt.umask+".jsonl")
		withUmask(tt.umask, "sync", url, "--out", out)
		if got := modes(out); got != tt.want {
			t.Errorf("umask %s: modes %s, want %s", tt.umask, got, tt.want)
		}
	}
	out := filepath.Join(dir, "kept.jsonl")
	withUmask("022", "sync", url, "--out", out)
	for _, f := range []string{out, out + ".checkpoint"} {
		must(t, os.Chmod(f, 0o640))
	}
	writeFile(t, src, line(1, 1), line(2, 2)) // so that both files are rewritten
	withUmask("077", "sync", url, "--out", out)
	if got := modes(out); got != "640 640" {
		t.Errorf("existing files: modes %s, want 640 640", got)
	}
	writeFile(t, src, line(1, 1), line(2, 2), line(3, 3))
	withUmask("022", "sync", "--private", url, "--out", out)
	if got := modes(out); got != "600 600" {
		t.Errorf("--private on existing files: modes %s, want 600 600", got)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
