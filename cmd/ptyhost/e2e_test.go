package main

// End-to-end tests: the real server (the same run() as the binary), the
// real HOST plugin binary over go-plugin, real WebSocket clients and, for
// `ptyhost attach`, the real ptyhost binary on a real PTY.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
	"github.com/ptyhost/ptyhost/internal/testbin"
)

// runServer runs the server in-process for e2etest: the same run() as
// the binary.
func runServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, args, stdio{in: strings.NewReader(""), out: stdout, err: stderr})
}

// startServer runs `ptyhost serve` in-process with the HOST plugin and
// extra flags; the test's cleanup stops it.
func startServer(t *testing.T, extra ...string) *e2etest.Server {
	t.Helper()
	return e2etest.Start(t, e2etest.Options{Run: runServer, Args: extra})
}

func tail(b []byte) []byte { return e2etest.Tail(b, 200) }

// closedNormally reports whether err ended a connection with close code
// 1000.
func closedNormally(err error) bool {
	code, _, ok := wsproto.CloseStatus(err)
	return ok && code == wsproto.CloseNormal
}

func TestE2EShellTwoClients(t *testing.T) {
	srv := startServer(t)
	cwd := filepath.Join(t.TempDir(), "dir with spaces")
	os.Mkdir(cwd, 0o755)
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}, "worktree_path": cwd, "env": map[string]string{"GREETING": "hej"}})
	a, b := srv.Attach(t, id), srv.Attach(t, id)
	a.Send("echo $((6*7)) $GREETING $TERM; pwd\r")
	for _, c := range []*e2etest.Term{a, b} {
		c.WaitOutput("42 hej xterm-256color")
		c.WaitOutput(cwd)
	}
	b.Send("echo typed-by-b\r")
	for _, c := range []*e2etest.Term{a, b} {
		c.WaitOutput("typed-by-b\r\n")
	}
	code, rec := srv.Request(t, "GET", "/api/v1/sessions/"+id, nil)
	if code != 200 || rec["status"] != "ACTIVE" || rec["active_connections"] != 2.0 {
		t.Errorf("session = %d %v", code, rec)
	}

	// A late joiner sees the history; so does one that left and returns.
	late := srv.Attach(t, id)
	late.WaitOutput("typed-by-b")
	a.Conn.CloseWith(wsproto.CloseNormal, "")
	b.Send("echo after-a-left\r")
	again := srv.Attach(t, id)
	again.WaitOutput("42 hej")
	again.WaitOutput("after-a-left")

	// Resize: every client is told; the shell sees it.
	again.SendText(`{"type":"resize","cols":100,"rows":31}`)
	for _, c := range []*e2etest.Term{b, late, again} {
		if m := c.WaitControl("resize"); m.Cols != 100 || m.Rows != 31 {
			t.Errorf("resize message %v", m)
		}
	}
	b.Send("stty size\r")
	b.WaitOutput("31 100")

	// Bad input from one client hurts nobody.
	late.SendText(`{"type":"resize","cols":0,"rows":0}`)
	if m := late.WaitControl("error"); !strings.Contains(m.Message, "1 to 1000") {
		t.Errorf("error = %v", m)
	}
	late.SendText(`not json`)
	late.WaitControl("error")
	b.Send("echo still-fine\r")
	late.WaitOutput("still-fine")

	// Exit: all output, then the exit message, then a normal close.
	b.Send("printf done; exit 7\r")
	m := late.WaitControl("exit")
	if m.Code != 7 {
		t.Errorf("exit = %v", m)
	}
	if !bytes.Contains(late.Out, []byte("done")) {
		t.Error("output before exit lost")
	}
	err := late.WaitEnd()
	if !closedNormally(err) {
		t.Errorf("close: %v", err)
	}
	code, rec = srv.Request(t, "GET", "/api/v1/sessions/"+id, nil)
	if code != 200 || rec["status"] != "TERMINATED" || rec["exit_code"] != 7.0 {
		t.Errorf("after exit: %d %v", code, rec)
	}
}

func TestE2EOutputIntegrity(t *testing.T) {
	srv := startServer(t, "--scrollback", "4MiB")
	tests := []struct {
		name    string
		command string
		want    func([]byte) error
		code    int
	}{
		{
			// One MiB then exit: every byte before the exit message.
			name:    "1 MiB then exit",
			command: `head -c 1048576 /dev/zero | tr '\0' 'x'; exit 3`,
			code:    3,
			want: func(out []byte) error {
				if n := bytes.Count(out, []byte("x")); n != 1<<20 {
					return fmt.Errorf("got %d of %d bytes", n, 1<<20)
				}
				return nil
			},
		},
		{
			// A 4-byte character written in two halves, apart in time.
			name:    "split UTF-8",
			command: `printf '<\360\237'; sleep 0.2; printf '\231\202>'`,
			want: func(out []byte) error {
				if !bytes.Contains(out, []byte("<🙂>")) {
					return fmt.Errorf("got % x", tail(out))
				}
				return nil
			},
		},
		{
			name:    "killed by a signal",
			command: `kill -KILL $$`,
			code:    137,
			want:    func([]byte) error { return nil },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The command waits for a keystroke so the client is attached
			// before any output.
			id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "read go; " + tt.command}})
			c := srv.Attach(t, id)
			c.Send("go\r")
			m := c.WaitControl("exit")
			if m.Code != tt.code {
				t.Errorf("exit = %v, want code %v", m, tt.code)
			}
			if err := tt.want(c.Out); err != nil {
				t.Error(err)
			}
			if tt.code == 137 && m.Signal != "SIGKILL" {
				t.Errorf("signal = %v", m.Signal)
			}
		})
	}
}

func TestE2EEarlyOutputIsReplayed(t *testing.T) {
	srv := startServer(t)
	// The command marks in a file when its output is written; the client
	// attaches only after that, so it can see the output only by replay.
	mark := filepath.Join(t.TempDir(), "written")
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "echo early bird; touch " + mark + "; exec cat"}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(mark); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command never ran")
		}
		time.Sleep(5 * time.Millisecond)
	}
	c := srv.Attach(t, id)
	if c.Hello().Offset != 0 {
		t.Errorf("hello = %+v, want the replay from offset 0", c.Hello())
	}
	c.WaitOutput("early bird")
}

func TestE2ERecreateHasNoDuplicateOutput(t *testing.T) {
	srv := startServer(t)
	body := map[string]any{"id": "again", "command": []string{"/bin/sh", "-c", "echo first-life; exec cat"}}
	srv.CreateSession(t, body)
	c := srv.Attach(t, "again")
	c.WaitOutput("first-life")
	if code, _ := srv.Request(t, "DELETE", "/api/v1/sessions/again", nil); code != 204 {
		t.Fatal(code)
	}
	if err := c.WaitEnd(); !closedNormally(err) && !strings.Contains(err.Error(), "Session destroyed") {
		t.Errorf("close on destroy: %v", err)
	}
	body["command"] = []string{"/bin/sh", "-c", "echo second-life; exec cat"}
	srv.CreateSession(t, body)
	d := srv.Attach(t, "again")
	d.WaitOutput("second-life")
	if bytes.Contains(d.Out, []byte("first-life")) {
		t.Errorf("old output replayed: %q", d.Out)
	}
	d.Send("ping\r")
	d.WaitOutput("ping\r\nping")
	if n := bytes.Count(d.Out, []byte("second-life")); n != 1 {
		t.Errorf("second-life %d times", n)
	}
}

func TestE2EBadRequests(t *testing.T) {
	srv := startServer(t, "--token", "t0ken-t0ken-t0ken")
	missing := filepath.Join(t.TempDir(), "nope")
	for _, tt := range []struct {
		name string
		body map[string]any
		want int
		msg  string
	}{
		{"missing working dir", map[string]any{"environment_id": "host", "worktree_path": missing}, 400, "nope"},
		{"unknown environment", map[string]any{"environment_id": "mars"}, 404, "mars"},
		{"bad size", map[string]any{"environment_id": "host", "cols": 5000, "rows": 5000}, 400, "1 to 1000"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out := srv.Request(t, "POST", "/api/v1/sessions", tt.body)
			if code != tt.want || !strings.Contains(fmt.Sprint(out["error"]), tt.msg) {
				t.Errorf("%d %v, want %d mentioning %q", code, out, tt.want, tt.msg)
			}
		})
	}
	code, out := srv.Request(t, "POST", "/api/v1/environments", map[string]any{"type": "HOST", "config": map[string]any{"shel": "/bin/sh"}})
	if code != 400 || !strings.Contains(fmt.Sprint(out["error"]), "shel") {
		t.Errorf("bad config: %d %v", code, out)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/sessions", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("bad token: %d", resp.StatusCode)
	}
	// Nothing was left behind by the failures.
	if code, out := srv.Request(t, "GET", "/api/v1/sessions", nil); code != 200 {
		t.Errorf("list: %d %v", code, out)
	} else {
		for _, s := range out["sessions"].([]any) {
			if st := s.(map[string]any)["status"]; st == "ACTIVE" || st == "IDLE" {
				t.Errorf("live session after failures: %v", s)
			}
		}
	}
}

func TestIdleTimeoutFlag(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"-1", core.NoIdleTimeout},
		{"never", core.NoIdleTimeout},
		{"0", core.DestroyWhenIdle},
		{"90s", 90 * time.Second},
	} {
		var d time.Duration
		if err := (*idleTimeout)(&d).Set(tt.in); err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if got := managerIdleTimeout(d); got != tt.want {
			t.Errorf("%q: manager idle timeout %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestServeRefusesOpenListenWithoutToken(t *testing.T) {
	err := run(t.Context(), []string{"serve", "--listen", "0.0.0.0:0", "--data-dir", t.TempDir()}, stdio{out: io.Discard, err: io.Discard})
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(ue.msg, "--token") {
		t.Errorf("err = %v", err)
	}
	for _, bad := range [][]string{
		{"--scrollback", "lots"},
		{"--idle-timeout", "soon"},
		{"--idle-timeout", "-5m"},
		{"--linger", "0s"},
		{"--orphan-timeout", "0s"},
		{"--orphan-timeout", "soon"},
		{"--hang-up-on-stop=maybe"},
		{"--log-format", "xml"},
		{"--listen", "nowhere"},
		{"extra-arg"},
	} {
		err := run(t.Context(), append([]string{"serve", "--data-dir", t.TempDir()}, bad...), stdio{out: io.Discard, err: io.Discard})
		if !errors.As(err, &ue) {
			t.Errorf("%v: err = %v, want a usage error", bad, err)
		}
	}
	// A bad duration or boolean says what it wants, not "parse error".
	for bad, want := range map[string]string{
		"--orphan-timeout=soon": "not a duration; want one such as 90s",
		"--node-lease=soon":     "not a duration; want one such as 90s",
		"--web=maybe":           "want true or false",
		"--record-input=2":      "want true or false",
	} {
		err := run(t.Context(), []string{"serve", "--data-dir", t.TempDir(), bad}, stdio{out: io.Discard, err: io.Discard})
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want a usage error saying %q", bad, err, want)
		}
	}
}

// TestE2EAttachCommand runs the real ptyhost binary on a real PTY.
func TestE2EAttachCommand(t *testing.T) {
	srv := startServer(t)
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}})
	cmd := exec.Command(testbin.Ptyhost(t), "attach", "--server", srv.URL, id)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 90, Rows: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	out := &ptyReader{f: ptmx}
	go out.run()

	// Raw mode passes keys through; the session sees our size.
	ptmx.Write([]byte("stty size; echo $((2+3))\r"))
	out.wait(t, regexp.MustCompile(`20 90\r\n5\r\n`))
	// The resize travels as SIGWINCH to ptyhost attach, then to the
	// server and the session: ask until the shell sees it.
	pty.Setsize(ptmx, &pty.Winsize{Cols: 110, Rows: 33})
	resized := regexp.MustCompile(`33 110`)
	for deadline := time.Now().Add(15 * time.Second); !resized.MatchString(out.buf.String()); {
		if time.Now().After(deadline) {
			t.Fatalf("the session never saw the resize; screen tail %q", tail([]byte(out.buf.String())))
		}
		ptmx.Write([]byte("stty size\r"))
		time.Sleep(100 * time.Millisecond)
	}

	// Ctrl-] detaches; the session lives on.
	ptmx.Write([]byte{0x1d})
	out.wait(t, regexp.MustCompile(`detached`))
	if err := waitExit(cmd); err != nil {
		t.Errorf("detach exit: %v", err)
	}
	if code, rec := srv.Request(t, "GET", "/api/v1/sessions/"+id, nil); code != 200 || rec["status"] == "TERMINATED" {
		t.Errorf("after detach: %v", rec)
	}

	// Attach again; the session's exit code becomes ptyhost's.
	cmd, ptmx2, out2 := startCLI(t, "attach", "--server", srv.URL, id)
	out2.wait(t, regexp.MustCompile(`33 110`)) // the replay
	ptmx2.Write([]byte("exit 9\r"))
	err = waitExit(cmd)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 9 {
		t.Errorf("exit = %v, want status 9", err)
	}
}

func waitExit(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		return fmt.Errorf("did not exit: %v", <-done)
	}
}

// startCLI runs the ptyhost binary with args in a PTY, collecting what it
// writes; the PTY is closed at the test's end.
func startCLI(t *testing.T, args ...string) (*exec.Cmd, *os.File, *ptyReader) {
	t.Helper()
	cmd := exec.Command(testbin.Ptyhost(t), args...)
	ptmx, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptmx.Close() })
	out := &ptyReader{f: ptmx}
	go out.run()
	return cmd, ptmx, out
}

// ptyReader collects what a PTY's program writes.
type ptyReader struct {
	f   *os.File
	buf syncBuffer
}

func (r *ptyReader) run() { io.Copy(&r.buf, r.f) }

func (r *ptyReader) wait(t *testing.T, re *regexp.Regexp) {
	t.Helper()
	r.buf.waitUntil(t, 15*time.Second, re.MatchString, func(b string) string {
		return fmt.Sprintf("waiting for %s; screen tail %q", re, tail([]byte(b)))
	})
}

// farListener is a loopback listener that reports the address a name
// such as "localhost" might resolve to on a badly configured machine.
type farListener struct{ net.Listener }

func (farListener) Addr() net.Addr { return &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 7420} }

// TestServeRefusesLocalhostResolvedBeyondLoopback: "localhost" passes the
// flag check, but the address bound decides. Not parallel: it replaces
// listenTCP.
func TestServeRefusesLocalhostResolvedBeyondLoopback(t *testing.T) {
	defer func(l func(string, string) (net.Listener, error)) { listenTCP = l }(listenTCP)
	var asked string
	listenTCP = func(network, addr string) (net.Listener, error) {
		asked = addr
		ln, err := net.Listen(network, "127.0.0.1:0")
		return farListener{ln}, err
	}
	dir := t.TempDir()
	err := run(t.Context(), []string{"serve", "--listen", "localhost:0", "--data-dir", dir}, stdio{out: io.Discard, err: io.Discard})
	var ue usageError
	if !errors.As(err, &ue) || !strings.Contains(ue.msg, `--listen "localhost:0" resolved to 192.0.2.1:7420`) || !strings.Contains(ue.msg, "--token") {
		t.Fatalf("err = %v, want a usage error naming the address and --token", err)
	}
	if asked != "localhost:0" {
		t.Errorf("listened on %q, want the flag's localhost:0", asked)
	}
	if _, err := os.Stat(filepath.Join(dir, "ptyhost.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the refused server made its database (stat: %v)", err)
	}
	// Any name is judged so, as the README says: one bound beyond
	// loopback is refused, one bound on it serves.
	quiet := stdio{out: io.Discard, err: io.Discard}
	_, err = parseServeFlags([]string{"--listen", "box.example:0", "--data-dir", dir}, quiet)
	if err != nil {
		t.Errorf("--listen box.example:0 without a token refused before it is resolved: %v", err)
	}
	err = run(t.Context(), []string{"serve", "--listen", "box.example:0", "--data-dir", dir}, stdio{out: io.Discard, err: io.Discard})
	if !errors.As(err, &ue) || !strings.Contains(ue.msg, `--listen "box.example:0" resolved to 192.0.2.1:7420`) || asked != "box.example:0" {
		t.Errorf("--listen box.example:0 bound beyond loopback: %v (listened on %q), want a usage error naming the address", err, asked)
	}
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0"} {
		if _, err := parseServeFlags([]string{"--listen", listen, "--data-dir", dir}, quiet); err == nil || !strings.Contains(err.Error(), "reachable beyond this machine") {
			t.Errorf("--listen %s without a token: %v, want refused before listening", listen, err)
		}
	}
	for _, tt := range []struct {
		bound          net.Addr
		token          string
		insecure, want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, "", false, true},
		{&net.TCPAddr{IP: net.IPv6loopback}, "", false, true},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1")}, "", false, false},
		{&net.TCPAddr{IP: net.IPv4zero}, "", false, false},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1")}, "sixteen-bytes-xx", false, true},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.1")}, "", true, true},
	} {
		if err := checkBound(tt.bound, "x:1", tt.token, tt.insecure); (err == nil) != tt.want {
			t.Errorf("checkBound(%v, token %q, insecure %v) = %v, want allowed %v", tt.bound, tt.token, tt.insecure, err, tt.want)
		}
	}
}
