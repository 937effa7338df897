package pluginlog

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// collect gathers the lines a reader relays.
type collect struct {
	mu    sync.Mutex
	lines []string
}

func (c *collect) line(l []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, string(l))
}

func (c *collect) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.lines)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// The stderr writes to the process's stderr until redirected, then to the
// process's log file in the directory, which it empties, saying so, when a
// line would take it past MaxSize.
func TestStderrRedirect(t *testing.T) {
	old := MaxSize
	MaxSize = 256
	t.Cleanup(func() { MaxSize = old })
	dir := t.TempDir()
	stand, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stand.Close()
	s := NewStderr(stand)
	if _, err := s.Write([]byte("to the pipe\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Redirect(""); err == nil {
		t.Error("Redirect with no directory: no error")
	}
	if err := s.Redirect(dir); err != nil {
		t.Fatal(err)
	}
	path := File(dir, os.Getpid())
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v, want 0600: only the server's user may read it", fi.Mode().Perm())
	}
	line := strings.Repeat("x", 99) + "\n"
	for range 2 {
		if _, err := s.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	// stand's descriptor is the file's now, as the process's stderr is.
	if _, err := stand.Write([]byte("a panic's trace\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if want := line + line + "a panic's trace\n"; string(b) != want {
		t.Errorf("log file holds %q, want %q", b, want)
	}
	// The third line would take it past 256 bytes (counted are those
	// written through s): emptied first.
	if _, err := s.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	first, rest, _ := bytes.Cut(b, []byte("\n"))
	if !bytes.Contains(first, []byte("was emptied")) || string(rest) != line {
		t.Errorf("after emptying the file holds %q, want the emptied line and %q", b, line)
	}
}

// Lines are relayed once across servers (Follow, then another Follow,
// then Drain), whole ones only until the process has exited; a file the
// plugin emptied is relayed from its start; Drain removes the files.
func TestFollowAndDrain(t *testing.T) {
	dir := t.TempDir()
	const pid = 4242
	path := File(dir, pid)
	appendFile(t, path, `{"@message":"one"}`+"\n"+`{"@message":"tw`)

	var c collect
	follow := func() {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { Follow(ctx, dir, pid, time.Millisecond, c.line); close(done) }()
		deadline := time.Now().Add(10 * time.Second)
		for len(c.got()) == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		cancel()
		<-done
	}
	follow()
	if got := c.got(); !slices.Equal(got, []string{`{"@message":"one"}`}) {
		t.Fatalf("first server relayed %q, want the one whole line", got)
	}
	appendFile(t, path, `o"}`+"\n")
	follow() // the next server: from where the first left off
	if got := c.got(); !slices.Equal(got, []string{`{"@message":"one"}`, `{"@message":"two"}`}) {
		t.Fatalf("after the second server: %q, want each line once", got)
	}

	// Emptied, as the plugin does: from its start, though shorter.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, `{"@message":"new"}`+"\n"+"fatal error: no newline")
	Drain(dir, pid, c.line)
	want := []string{`{"@message":"one"}`, `{"@message":"two"}`, `{"@message":"new"}`, "fatal error: no newline"}
	if got := c.got(); !slices.Equal(got, want) {
		t.Errorf("after Drain: %q, want %q", got, want)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Drain left %v", ents)
	}
}

func TestLeftovers(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"plugin-12.log", "plugin-12.log.pos", "plugin-12.log.pos.tmp", "plugin-7.log", "plugin-x.log", "plugin-3.sock", "other.log"} {
		appendFile(t, filepath.Join(dir, name), "x\n")
	}
	got := Leftovers(dir)
	slices.Sort(got)
	if !slices.Equal(got, []int{7, 12}) {
		t.Errorf("Leftovers = %v, want [7 12]", got)
	}
	Remove(dir, 12)
	for _, name := range []string{"plugin-12.log", "plugin-12.log.pos", "plugin-12.log.pos.tmp"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("Remove left %s: %v", name, err)
		}
	}
}

func TestParse(t *testing.T) {
	// @module, the part of the plugin that logged (a Named logger's
	// name), stays, as in the lines go-plugin reads from a pipe.
	level, msg, args := Parse([]byte(`{"@level":"warn","@message":"no host came back","@module":"docker","@timestamp":"2026-12-08T00:30:00.000000Z","orphan_timeout":"10m0s","sessions":2}`))
	if level != hclog.Warn || msg != "no host came back" {
		t.Errorf("level %v, message %q", level, msg)
	}
	want := []any{"@module", "docker", "logged_at", "2026-12-08T00:30:00.000000Z", "orphan_timeout", "10m0s", "sessions", float64(2)}
	if !slices.Equal(args, want) {
		t.Errorf("args %v, want %v", args, want)
	}
	if level, msg, args := Parse([]byte("goroutine 1 [running]:")); level != hclog.Error || msg != "goroutine 1 [running]:" || args != nil {
		t.Errorf("a line of a crash: %v %q %v, want an error of its text", level, msg, args)
	}
}
