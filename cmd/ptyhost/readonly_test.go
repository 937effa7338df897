package main

import (
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestAttachReadOnly: 'attach --read-only' dials with mode=read, says so
// in a line, sends nothing typed and no size, and the detach key still
// detaches, with the way back (read-only again) in the detach line.
func TestAttachReadOnly(t *testing.T) {
	f := newFakeServer(t)
	c, stdin := startAttach(t, f, "--read-only", "s1")
	c.out.waitFor(t, "replayed")
	typeIn(t, stdin, "exit 3\n")
	typeIn(t, stdin, "typed\x1dafter")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, c.err.String())
	}
	want := "[attached read-only to session s1: what you type is not sent; press Ctrl-] to detach]\r\n" +
		"\r\n[detached from session s1; reattach with 'ptyhost attach --read-only s1']\r\n"
	if got := c.err.String(); got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	if got := f.input.String(); got != "" {
		t.Errorf("the server received input %q from a read-only client", got)
	}
	f.closes.waitFor(t, "1000 detached\n")
	queries := f.attachQueries()
	if len(queries) != 1 || queries[0] != "mode=read" {
		t.Errorf("attach queries %q, want [mode=read]", queries)
	}
}

// TestAttachReadOnlyTerminal: on a terminal, a viewer is in raw mode (its
// keys do not echo) but sends no size, neither at once nor on SIGWINCH.
func TestAttachReadOnlyTerminal(t *testing.T) {
	ptmx, tty := openPTY(t)
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 100, Rows: 30}); err != nil {
		t.Fatal(err)
	}
	f := newFakeServer(t)
	c, err := newClient(f.srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	winch := make(chan os.Signal, 1)
	type result struct {
		res attachResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := attach(t.Context(), c, stdio{in: tty, out: &out, err: &errOut}, attachOptions{id: "s1", detachKey: defaultDetachKey, winch: winch, readOnly: true})
		done <- result{res, err}
	}()
	out.waitFor(t, "replayed")
	if !isRaw(termios(t, tty)) {
		t.Error("the terminal is not in raw mode while attached read-only")
	}
	winch <- syscall.SIGWINCH
	if _, err := ptmx.Write([]byte("exit 9\r\x1d")); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(waitTimeout):
		t.Fatal("attach did not end")
	}
	if r.err != nil || r.res.end != endDetached {
		t.Errorf("attach = %+v, %v; want a detach", r.res, r.err)
	}
	if got := f.controls.String(); got != "" {
		t.Errorf("a read-only client sent control messages %q", got)
	}
	if got := f.input.String(); got != "" {
		t.Errorf("a read-only client sent input %q", got)
	}
}

// TestAttachReadOnlyUsage: a viewer without a detach key could not leave.
func TestAttachReadOnlyUsage(t *testing.T) {
	f := newFakeServer(t)
	code, _, stderr := runCmd(t, "attach", "--server", f.srv.URL, "--read-only", "--detach-key", "none", "s1")
	if code != 2 || !strings.Contains(stderr, "--read-only needs a detach key") {
		t.Errorf("exit %d, stderr %q; want 2 and the reason", code, stderr)
	}
	if r := f.requestsSoFar(); len(r) != 0 {
		t.Errorf("requests %+v before the usage error", r)
	}
}

// TestE2EAttachReadOnly drives 'ptyhost attach --read-only' in a PTY
// against the real server: the viewer sees the session's output, what it
// types never reaches the session, and its terminal's size does not
// become the session's.
func TestE2EAttachReadOnly(t *testing.T) {
	srv := startServer(t)
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}, "cols": 80, "rows": 24})
	writer := srv.Attach(t, id)

	cmd, ptmx, out := startCLI(t, "attach", "--read-only", "--server", srv.URL, id)
	pty.Setsize(ptmx, &pty.Winsize{Cols: 50, Rows: 10})
	out.wait(t, regexp.MustCompile(`\[attached read-only to session `+regexp.QuoteMeta(id)+`: what you type is not sent; press Ctrl-\] to detach\]\r\n`))
	writer.Send("echo from-$((40+2))\r")
	out.wait(t, regexp.MustCompile(`from-42\r\n`))

	// Keys typed by the viewer, then its detach: had attach sent them,
	// they would have gone before the detach.
	mark := t.TempDir() + "/typed"
	ptmx.Write([]byte("touch " + mark + "\r"))
	ptmx.Write([]byte{0x1d})
	out.wait(t, regexp.MustCompile(`\[detached from session `+regexp.QuoteMeta(id)+`, which keeps running until it exits or is killed; reattach with 'ptyhost attach --read-only `+regexp.QuoteMeta(id)+`'\]\r\n$`))
	if err := waitExit(cmd); err != nil {
		t.Errorf("detach: %v", err)
	}
	// The shell runs what it got in order: once this is echoed, a touch
	// from the viewer would have run.
	writer.Send("echo done-$((1+1))\r")
	writer.WaitOutput("done-2")
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("the viewer's keys reached the session")
	}
	if rec := srv.Session(t, id); rec["cols"] != 80.0 || rec["rows"] != 24.0 {
		t.Errorf("the session is %vx%v, want the 80x24 it was created with", rec["cols"], rec["rows"])
	}
	if strings.Contains(out.buf.String(), "input refused") {
		t.Errorf("attach sent the viewer's keys (the server refused them); screen tail %q", tail([]byte(out.buf.String())))
	}
	if n := strings.Count(out.buf.String(), "\r\n["); n != 1 {
		t.Errorf("%d bracketed lines after the first, want 1 (the detach line); screen tail %q", n, tail([]byte(out.buf.String())))
	}
}

// TestAttachReadOnlyReconnects: a viewer whose connection drops attaches
// again read-only, at the offset it had.
func TestAttachReadOnlyReconnects(t *testing.T) {
	f := newFakeServer(t)
	c, stdin := startAttach(t, f, "--read-only", "drop1")
	c.err.waitFor(t, "[reconnected]\r\n")
	typeIn(t, stdin, "\x1d")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, c.err.String())
	}
	queries := f.attachQueries()
	if len(queries) != 2 || queries[0] != "mode=read" || !strings.Contains(queries[1], "mode=read") || !strings.Contains(queries[1], "offset=10") {
		t.Errorf("attach queries %q, want mode=read, then mode=read with offset=10", queries)
	}
	if got := f.input.String(); got != "" {
		t.Errorf("the server received input %q from a read-only client", got)
	}
}

// An attach the server forbids, as it does a read-only token's without
// mode=read, names the flag that asks for that mode: the server's message
// can say only "mode=read", which no command takes. A viewer is not told.
func TestAttachForbiddenNamesReadOnly(t *testing.T) {
	f := newFakeServer(t)
	f.respond("GET /api/v1/sessions/s1/attach", http.StatusForbidden, `{"error": "forbidden: the read-only token attaches with mode=read only"}`)
	code, _, stderr := runCmd(t, "attach", "--server", f.srv.URL, "s1")
	want := "ptyhost: forbidden: the read-only token attaches with mode=read only (HTTP 403); a read-only token watches with 'ptyhost attach --read-only s1'\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d, stderr %q; want 1, %q", code, stderr, want)
	}
	code, _, stderr = runCmd(t, "attach", "--read-only", "--server", f.srv.URL, "s1")
	if code != 1 || strings.Contains(stderr, "watches with") {
		t.Errorf("--read-only: exit %d, stderr %q; want 1 without the hint", code, stderr)
	}
}
