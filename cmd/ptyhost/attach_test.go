package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// serveAttach is the fake attach endpoint. It sends hello and f.replay,
// then echoes every input byte back and obeys complete input lines:
//
//	exit N     send exit with code N, close 1000 "Session exited"
//	kill SIG   send exit with signal SIG, close likewise
//	crash      send exit with reason plugin_crashed, close likewise
//	error      send an error control message and carry on
//	reset      send reset, then the replay again
//	destroy    close 1000 "Session destroyed" without an exit message
//	shutdown   close 1001 "Server shutting down"
//	restart    close 1012 "Server restarting; the session goes on"
//	restarted  send restarted, then the output "new program\r\n"
//	evil       send an error control message, then an exit with a
//	           reason, both with escape sequences in them
//
// A valid resize is answered with a resize, anything else with error.
// With a session whose id starts with "history", the hello says the
// replay is history (its "end"). Sessions whose id starts with "gone" are 410, "missing" 404; with one
// starting "nohello" the server sends output before hello, with one
// starting "early" it closes 1000 "Session destroyed" before hello, and
// with one starting "drop" it drops a connection without an offset after
// the replay, as a failing network does. As a real server does, the fake
// pings the client every 50ms, except on connections to a session whose
// id starts with "quiet" (a server embedded with no pings), and on the
// first connection to one whose id starts with "stall", which stops
// altogether once the replay is sent, as a server stopped with SIGSTOP
// does: it sends nothing and reads nothing, so it answers no ping.
func (f *fakeServer) serveAttach(w http.ResponseWriter, r *http.Request, id string) {
	switch {
	case strings.HasPrefix(id, "missing"):
		writeJSON(w, http.StatusNotFound, `{"error": "session not found"}`)
		return
	case strings.HasPrefix(id, "gone"):
		writeJSON(w, http.StatusGone, `{"error": "session has ended", "exit_code": 7}`)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{wsproto.Subprotocol}})
	if err != nil {
		return
	}
	defer c.CloseNow()
	if c.Subprotocol() != wsproto.Subprotocol {
		c.Close(websocket.StatusPolicyViolation, "want subprotocol "+wsproto.Subprotocol)
		return
	}
	ctx := r.Context()
	switch {
	case strings.HasPrefix(id, "nohello"):
		_ = c.Write(ctx, websocket.MessageBinary, []byte("output"))
		_, _, _ = c.Read(ctx) // until the client gives up
		return
	case strings.HasPrefix(id, "early"):
		c.Close(websocket.StatusNormalClosure, "Session destroyed")
		return
	}
	send := func(v string) error { return c.Write(ctx, websocket.MessageText, []byte(v)) }
	sendReplay := func() error {
		for _, p := range f.replay {
			if err := c.Write(ctx, websocket.MessageBinary, []byte(p)); err != nil {
				return err
			}
		}
		return nil
	}
	exit := func(msg string) {
		if send(msg) == nil {
			c.Close(websocket.StatusNormalClosure, "Session exited")
		}
	}
	hello := fmt.Sprintf(`{"type": "hello", "session_id": %q, "cols": 80, "rows": 24, "offset": 0}`, id)
	if strings.HasPrefix(id, "history") { // the replay is history, as a server says
		hello = fmt.Sprintf(`{"type": "hello", "session_id": %q, "cols": 80, "rows": 24, "offset": 0, "end": %d}`, id, len(strings.Join(f.replay, "")))
	}
	if send(hello) != nil || sendReplay() != nil {
		return
	}
	if strings.HasPrefix(id, "drop") && !r.URL.Query().Has(wsproto.OffsetParam) {
		return // CloseNow, without a close frame
	}
	if strings.HasPrefix(id, "stall") && !r.URL.Query().Has(wsproto.OffsetParam) {
		select {
		case <-f.stopped:
		case <-ctx.Done():
		}
		return
	}
	if !strings.HasPrefix(id, "quiet") {
		pingCtx, stopPings := context.WithCancel(ctx)
		defer stopPings()
		go func() {
			for {
				select {
				case <-pingCtx.Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
				if c.Ping(pingCtx) != nil {
					return
				}
			}
		}()
	}
	var line []byte
	for {
		typ, p, err := c.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				fmt.Fprintf(&f.closes, "%d %s\n", ce.Code, ce.Reason)
			} else {
				fmt.Fprintf(&f.closes, "gone: %v\n", err)
			}
			return
		}
		if typ == websocket.MessageText {
			f.kinds.Write([]byte("c"))
			fmt.Fprintf(&f.controls, "%s\n", p)
			var m struct {
				Type       string
				Cols, Rows int
			}
			if json.Unmarshal(p, &m) != nil || m.Type != "resize" || m.Cols < 1 || m.Cols > 1000 || m.Rows < 1 || m.Rows > 1000 {
				send(`{"type": "error", "message": "bad control message"}`)
				continue
			}
			send(fmt.Sprintf(`{"type": "resize", "cols": %d, "rows": %d}`, m.Cols, m.Rows))
			continue
		}
		f.kinds.Write([]byte("i"))
		f.input.Write(p)
		if c.Write(ctx, websocket.MessageBinary, p) != nil {
			return
		}
		for _, b := range p {
			if b != '\r' && b != '\n' {
				line = append(line, b)
				continue
			}
			cmd, arg, _ := strings.Cut(string(line), " ")
			line = line[:0]
			switch cmd {
			case "exit":
				code, _ := strconv.Atoi(arg)
				exit(fmt.Sprintf(`{"type": "exit", "code": %d, "signal": "", "reason": ""}`, code))
				return
			case "kill":
				exit(fmt.Sprintf(`{"type": "exit", "code": -1, "signal": %q, "reason": ""}`, arg))
				return
			case "crash":
				exit(`{"type": "exit", "code": -1, "signal": "", "reason": "plugin_crashed"}`)
				return
			case "error":
				send(`{"type": "error", "message": "frame rejected"}`)
			case "reset":
				if send(`{"type": "reset", "offset": 0}`) != nil || sendReplay() != nil {
					return
				}
			case "destroy":
				c.Close(websocket.StatusNormalClosure, "Session destroyed")
				return
			case "shutdown":
				c.Close(websocket.StatusGoingAway, "Server shutting down")
				return
			case "restart":
				c.Close(wsproto.CloseRestart, wsproto.CloseReasonRestart)
				return
			case "nodelost":
				c.Close(wsproto.CloseNodeLost, wsproto.CloseReasonNodeLost)
				return
			case "evil":
				send(`{"type": "error", "message": "bad\u001b]0;pwned\u0007\u001b[2J"}`)
				exit(`{"type": "exit", "code": -1, "signal": "", "reason": "gone\u001b[31m\u009b2J"}`)
				return
			case "restarted":
				if send(`{"type": "restarted", "offset": 100}`) != nil || c.Write(ctx, websocket.MessageBinary, []byte("new program\r\n")) != nil {
					return
				}
			}
		}
	}
}

// newStdin returns a pipe to use as stdin, closed when the test ends so
// that the goroutine reading it finishes.
func newStdin(t *testing.T) (*io.PipeReader, *io.PipeWriter) {
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	return pr, pw
}

// typeIn writes s to stdin, failing the test if nobody reads it in time.
func typeIn(t *testing.T, w io.Writer, s string) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := io.WriteString(w, s)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("writing %q to stdin: %v", s, err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("nobody read %q from stdin", s)
	}
}

// startAttach runs "ptyhost attach ARGS... --server f" with stdin a pipe.
func startAttach(t *testing.T, f *fakeServer, args ...string) (*cmdRun, *io.PipeWriter) {
	pr, pw := newStdin(t)
	c := startCmd(t.Context(), append(append([]string{"attach"}, args...), "--server", f.srv.URL), pr)
	return c, pw
}

func TestAttachCopiesBytesExactly(t *testing.T) {
	f := newFakeServer(t)
	// 😀 is f0 9f 98 80; its first two bytes end one frame, its last two
	// start the next. Invalid UTF-8 and NUL pass through too.
	f.replay = []string{"smile: \xf0\x9f", "\x98\x80!\r\n", "raw \xff\x00 bytes\r\n"}
	c, stdin := startAttach(t, f, "s1")
	c.out.waitFor(t, "bytes\r\n")
	typeIn(t, stdin, "héllo wörld\n")
	f.input.waitFor(t, "héllo wörld\n")
	typeIn(t, stdin, "exit 0\n")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, c.err.String())
	}
	want := "smile: 😀!\r\nraw \xff\x00 bytes\r\nhéllo wörld\nexit 0\n"
	if got := c.out.String(); got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if got := f.input.String(); got != "héllo wörld\nexit 0\n" {
		t.Errorf("server received %q", got)
	}
	if got, want := c.err.String(), "\r\n[session exited with code 0]\r\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
	if got := f.controls.String(); got != "" {
		t.Errorf("sent control messages %q without a terminal", got)
	}
}

func TestAttachExitStatus(t *testing.T) {
	tests := []struct {
		input      string
		wantCode   int
		wantStderr string
	}{
		{"exit 0\n", 0, "\r\n[session exited with code 0]\r\n"},
		{"exit 3\n", 3, "\r\n[session exited with code 3]\r\n"},
		{"exit 300\n", 1, "\r\n[session exited with code 300]\r\n"},
		{"kill SIGKILL\n", 128 + 9, "\r\n[session killed by SIGKILL]\r\n"},
		{"crash\n", 1, "\r\n[session ended: plugin_crashed]\r\n"},
		{"destroy\n", 0, "\r\n[session destroyed]\r\n"},
		// Without reconnecting (--reconnect 0); reconnect_test.go
		// covers the rest.
		{"shutdown\n", 1, "ptyhost: the server is shutting down; reattach with 'ptyhost attach s1'\n"},
		{"restart\n", 1, "ptyhost: the server is restarting; the session goes on; reattach with 'ptyhost attach s1'\n"},
		{"nodelost\n", 1, "ptyhost: the node that runs the session is lost; reattach with 'ptyhost attach s1'\n"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.input), func(t *testing.T) {
			f := newFakeServer(t)
			c, stdin := startAttach(t, f, "--reconnect", "0", "s1")
			typeIn(t, stdin, tt.input)
			if code := c.wait(t); code != tt.wantCode || c.err.String() != tt.wantStderr {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, c.err.String(), tt.wantCode, tt.wantStderr)
			}
		})
	}
}

func TestAttachDetach(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		input     string
		wantInput string
	}{
		{"default ctrl-]", nil, "abc\x1ddef", "abc"},
		{"key alone", nil, "\x1d", ""},
		{"ctrl-a", []string{"--detach-key", "ctrl-a"}, "x\x1dy\x01z", "x\x1dy"},
		{"Ctrl-_", []string{"--detach-key", "Ctrl-_"}, "q\x1f", "q"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			c, stdin := startAttach(t, f, append(tt.args, "s1")...)
			c.out.waitFor(t, "replayed")
			typeIn(t, stdin, tt.input)
			if code := c.wait(t); code != 0 {
				t.Fatalf("exit %d, stderr %q", code, c.err.String())
			}
			if got, want := c.err.String(), "\r\n[detached from session s1; reattach with 'ptyhost attach s1']\r\n"; got != want {
				t.Errorf("stderr %q, want %q", got, want)
			}
			f.closes.waitFor(t, "1000 detached\n")
			if got := f.input.String(); got != tt.wantInput {
				t.Errorf("server received %q, want %q", got, tt.wantInput)
			}
		})
	}
}

func TestAttachDetachKeyNone(t *testing.T) {
	f := newFakeServer(t)
	c, stdin := startAttach(t, f, "--detach-key", "none", "s1")
	typeIn(t, stdin, "a\x1db\n")
	f.input.waitFor(t, "a\x1db\n")
	typeIn(t, stdin, "exit 0\n")
	if code := c.wait(t); code != 0 || c.err.String() != "\r\n[session exited with code 0]\r\n" {
		t.Errorf("exit %d, stderr %q", code, c.err.String())
	}
}

func TestAttachServerErrorMessage(t *testing.T) {
	f := newFakeServer(t)
	c, stdin := startAttach(t, f, "s1")
	typeIn(t, stdin, "error\n")
	c.err.waitFor(t, "\r\nptyhost: server: frame rejected\r\n")
	// The session carries on.
	typeIn(t, stdin, "still here\n")
	c.out.waitFor(t, "still here\n")
	typeIn(t, stdin, "exit 4\n")
	if code := c.wait(t); code != 4 {
		t.Errorf("exit %d, want 4", code)
	}
}

func TestAttachReset(t *testing.T) {
	f := newFakeServer(t)
	f.replay = []string{"[screen]"}
	c, stdin := startAttach(t, f, "s1")
	typeIn(t, stdin, "reset\n")
	c.out.waitFor(t, "reset\n\x1bc[screen]")
	typeIn(t, stdin, "exit 0\n")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if got, want := c.out.String(), "[screen]reset\n\x1bc[screen]exit 0\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
}

// TestAttachLeavesHistoryQueriesOut: the queries in the replay's history
// do not reach the local terminal, which would answer them as if typed;
// everything else of the replay does, and so do the queries in new
// output.
func TestAttachLeavesHistoryQueriesOut(t *testing.T) {
	f := newFakeServer(t)
	f.replay = []string{"ask\x1b[c\x1b", "[6n\x1b[31m!"}
	c, stdin := startAttach(t, f, "history1")
	typeIn(t, stdin, "x\x1b[cy\n")
	f.input.waitFor(t, "y\n")
	typeIn(t, stdin, "exit 0\n")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, c.err.String())
	}
	if got, want := c.out.String(), "ask\x1b[31m!x\x1b[cy\nexit 0\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
}

func TestAttachUpgradeRefused(t *testing.T) {
	tests := []struct {
		name       string
		id         string
		token      string
		wantCode   int
		wantStderr string
	}{
		{"not found", "missing1", "", 1, "ptyhost: session missing1 not found (HTTP 404)\n"},
		{"ended", "gone1", "", 7, "ptyhost: session gone1 has ended (exit code 7)\n"},
		{"unauthorized", "s1", "right", 1, "ptyhost: unauthorized: check --token or PTYHOST_TOKEN (HTTP 401)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.token = tt.token
			code, stdout, stderr := runCmd(t, "attach", "--server", f.srv.URL, "--token", "wrong", tt.id)
			if code != tt.wantCode || stderr != tt.wantStderr || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q", code, stdout, stderr, tt.wantCode, tt.wantStderr)
			}
		})
	}
}

func TestAttachSendsTokenAndPath(t *testing.T) {
	f := newFakeServer(t)
	f.token = "tok"
	c, stdin := startAttach(t, f, "--token", "tok", "a b")
	typeIn(t, stdin, "exit 0\n")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, c.err.String())
	}
	r := f.requestsSoFar()
	// The id is resolved first (an exact id, one GET), then attached.
	if len(r) != 2 || r[0].path != "/api/v1/sessions/a b" || r[1].path != "/api/v1/sessions/a b/attach" || r[1].auth != "Bearer tok" {
		t.Errorf("requests %+v", r)
	}
}

func TestAttachInterrupted(t *testing.T) {
	f := newFakeServer(t)
	ctx, cancel := context.WithCancelCause(t.Context())
	pr, _ := newStdin(t)
	c := startCmd(ctx, []string{"attach", "--server", f.srv.URL, "s1"}, pr)
	c.out.waitFor(t, "replayed")
	cancel(errors.New("interrupt signal received"))
	if code := c.wait(t); code != 1 || c.err.String() != "ptyhost: interrupt signal received\n" {
		t.Errorf("exit %d, stderr %q", code, c.err.String())
	}
	f.closes.waitFor(t, "1001 client exiting\n")
}

func TestAttachStdinEOF(t *testing.T) {
	// Input ends but the session does not: its output keeps coming.
	f := newFakeServer(t)
	c := startCmd(t.Context(), []string{"attach", "--server", f.srv.URL, "s1"}, strings.NewReader("echo\nexit 6\n"))
	if code := c.wait(t); code != 6 {
		t.Errorf("exit %d, stderr %q", code, c.err.String())
	}
	if got := c.out.String(); got != "replayed\r\necho\nexit 6\n" {
		t.Errorf("stdout %q", got)
	}
}

// errReader fails every read.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("input/output error") }

func TestAttachStdinError(t *testing.T) {
	f := newFakeServer(t)
	c := startCmd(t.Context(), []string{"attach", "--server", f.srv.URL, "s1"}, errReader{})
	if code := c.wait(t); code != 1 || c.err.String() != "ptyhost: reading input: input/output error\n" {
		t.Errorf("exit %d, stderr %q", code, c.err.String())
	}
}

func TestRun(t *testing.T) {
	f := newFakeServer(t)
	dir := t.TempDir()
	pr, stdin := newStdin(t)
	c := startCmd(t.Context(), []string{"run", "--server", f.srv.URL, "--cwd", dir, "--env-var", "A=1", "--env-var", "B=x=y", "--", "make", "-k", "test"}, pr)
	typeIn(t, stdin, "exit 5\n")
	if code := c.wait(t); code != 5 || c.err.String() != "\r\n[session exited with code 5]\r\n" {
		t.Fatalf("exit %d, stderr %q", code, c.err.String())
	}
	r := f.requestsSoFar()
	if len(r) != 3 || r[0].method+" "+r[0].path != "GET /api/v1/environments/host" ||
		r[1].method+" "+r[1].path != "POST /api/v1/sessions" || r[2].path != "/api/v1/sessions/new1/attach" {
		t.Fatalf("requests %+v", r)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(r[1].body), &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"environment_id": "host",
		"worktree_path":  dir,
		"command":        []any{"make", "-k", "test"},
		"env":            map[string]any{"A": "1", "B": "x=y"},
	}
	if got, want := fmt.Sprint(body), fmt.Sprint(want); got != want {
		t.Errorf("POST body %s, want %s", got, want)
	}
}

func TestRunDefaults(t *testing.T) {
	f := newFakeServer(t)
	pr, stdin := newStdin(t)
	c := startCmd(t.Context(), []string{"run", "--server", f.srv.URL, "--env", "dev", "--id", "mine"}, pr)
	typeIn(t, stdin, "exit 0\n")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, c.err.String())
	}
	// dev is an SSH environment: no local directory is sent.
	r := f.requestsSoFar()
	want := `{"id":"mine","environment_id":"dev"}`
	if len(r) != 3 || r[1].body != want || r[2].path != "/api/v1/sessions/mine/attach" {
		t.Errorf("requests %+v, want POST %s", r, want)
	}
}

func TestRunDetach(t *testing.T) {
	f := newFakeServer(t)
	pr, stdin := newStdin(t)
	c := startCmd(t.Context(), []string{"run", "--server", f.srv.URL}, pr)
	typeIn(t, stdin, "\x1d")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, c.err.String())
	}
	// One line says what happened and how to come back.
	want := "\r\n[detached from session new1; reattach with 'ptyhost attach new1']\r\n"
	if got := c.err.String(); got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	for _, r := range f.requestsSoFar() {
		if r.method == http.MethodDelete {
			t.Errorf("detaching destroyed the session")
		}
	}
}

func TestRunDestroyed(t *testing.T) {
	f := newFakeServer(t)
	pr, stdin := newStdin(t)
	c := startCmd(t.Context(), []string{"run", "--server", f.srv.URL}, pr)
	typeIn(t, stdin, "destroy\n")
	if code := c.wait(t); code != 1 || c.err.String() != "\r\n[session destroyed]\r\n" {
		t.Errorf("exit %d, stderr %q", code, c.err.String())
	}
}

func TestRunInterrupted(t *testing.T) {
	tests := []struct {
		name       string
		keep       bool
		wantDelete bool
		wantStderr string
	}{
		{"destroys", false, true, "ptyhost: interrupted\n"},
		{"keep", true, false, "ptyhost: session new1 left running (--keep); reattach with 'ptyhost attach new1'\nptyhost: interrupted\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			ctx, cancel := context.WithCancelCause(t.Context())
			pr, _ := newStdin(t)
			args := []string{"run", "--server", f.srv.URL}
			if tt.keep {
				args = append(args, "--keep")
			}
			c := startCmd(ctx, args, pr)
			c.out.waitFor(t, "replayed")
			cancel(errors.New("interrupted"))
			if code := c.wait(t); code != 1 || c.err.String() != tt.wantStderr {
				t.Errorf("exit %d, stderr %q; want 1, %q", code, c.err.String(), tt.wantStderr)
			}
			deleted := slices.ContainsFunc(f.requestsSoFar(), func(r fakeRequest) bool {
				return r.method+" "+r.path == "DELETE /api/v1/sessions/new1"
			})
			if deleted != tt.wantDelete {
				t.Errorf("session deleted: %v, want %v", deleted, tt.wantDelete)
			}
		})
	}
}

// termios returns the terminal settings of f without switching it to
// blocking mode, as f.Fd would.
func termios(t *testing.T, f *os.File) *unix.Termios {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var tio *unix.Termios
	if err := rc.Control(func(fd uintptr) { tio, err = unix.IoctlGetTermios(int(fd), ioctlGetTermios) }); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tio
}

func isRaw(tio *unix.Termios) bool {
	return tio.Lflag&(unix.ICANON|unix.ECHO|unix.ISIG) == 0
}

// openPTY opens a pseudo-terminal pair, closed when the test ends. A
// system that has none skips the test, unless PTYHOST_INTEGRATION=1 asks
// for every test to run: then it fails.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		if os.Getenv("PTYHOST_INTEGRATION") == "1" {
			t.Fatalf("no pty: %v", err)
		}
		t.Skipf("no pty: %v", err)
	}
	t.Cleanup(func() {
		tty.Close()
		ptmx.Close()
	})
	return ptmx, tty
}

func TestAttachTerminal(t *testing.T) {
	ptmx, tty := openPTY(t)
	// Setsize switches ptmx to blocking mode (it uses Fd); nothing reads
	// ptmx here, and tty stays non-blocking so closing it ends the input
	// goroutine.
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 100, Rows: 30}); err != nil {
		t.Fatal(err)
	}
	if isRaw(termios(t, tty)) {
		t.Fatal("a new pty is already raw")
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
		res, err := attach(t.Context(), c, stdio{in: tty, out: &out, err: &errOut}, attachOptions{id: "s1", detachKey: defaultDetachKey, winch: winch})
		done <- result{res, err}
	}()

	// The size follows hello.
	f.controls.waitFor(t, `{"type":"resize","cols":100,"rows":30}`+"\n")
	if !isRaw(termios(t, tty)) {
		t.Error("the terminal is not in raw mode while attached")
	}

	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 132, Rows: 43}); err != nil {
		t.Fatal(err)
	}
	winch <- syscall.SIGWINCH
	f.controls.waitFor(t, `{"type":"resize","cols":132,"rows":43}`+"\n")

	// In raw mode Enter is a bare \r, and Ctrl-C is a byte for the
	// session rather than a signal.
	if _, err := ptmx.Write([]byte("\x03\rexit 9\r")); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("attach did not end; server received %q", f.input.String())
	}
	if r.err != nil || r.res != (attachResult{end: endExited, code: 9}) {
		t.Errorf("attach = %+v, %v; want exit 9", r.res, r.err)
	}
	if isRaw(termios(t, tty)) {
		t.Error("the terminal is still raw after attach")
	}
	if got := f.input.String(); got != "\x03\rexit 9\r" {
		t.Errorf("server received %q", got)
	}
	if got := f.controls.String(); strings.Count(got, "\n") != 2 {
		t.Errorf("control messages %q, want the two resizes", got)
	}
	if !bytes.HasSuffix([]byte(out.String()), []byte("\x03\rexit 9\r")) {
		t.Errorf("stdout %q", out.String())
	}
}

// A size waiting to be sent goes before input waiting beside it, so that
// the program sees the terminal's size before what was typed: keys typed
// before attach connects (or while it reconnects) and the first size are
// both waiting when the sender starts, and the e2e test's shell once
// answered a `stty size` typed at once with 24 80.
func TestAttachSendsSizeBeforeWaitingInput(t *testing.T) {
	ptmx, tty := openPTY(t)
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: 90, Rows: 20}); err != nil {
		t.Fatal(err)
	}
	term := openTerminal(tty, io.Discard)
	if term == nil {
		t.Fatal("openTerminal: not a terminal")
	}
	f := newFakeServer(t)
	c, err := newClient(f.srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 20 // a sender picking at random fails one in two
	for round := range rounds {
		conn, err := dialAttach(t.Context(), c, &connWatch{}, "s1", false, stdio{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		in := newInput()
		in.put(t.Context(), []byte("stty size\r"))
		resized := make(chan struct{}, 1)
		resized <- struct{}{}
		ctx, cancel := context.WithCancel(t.Context())
		a := &attachment{conn: conn, inputStall: waitTimeout}
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.send(ctx, conn, in, term, resized, new(atomic.Bool))
		}()
		f.input.waitFor(t, strings.Repeat("stty size\r", round+1))
		cancel()
		<-done
		conn.Close()
	}
	if got, want := f.kinds.String(), strings.Repeat("ci", rounds); got != want {
		t.Errorf("the server got %q (c a size, i input), want %q: input went before the size", got, want)
	}
}
