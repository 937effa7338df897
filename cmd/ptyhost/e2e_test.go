package main

// End-to-end tests: the real server (the same run() as the binary), the
// real HOST plugin binary over go-plugin, real WebSocket clients and, for
// `ptyhost attach`, the real ptyhost binary on a real PTY.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/creack/pty"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/testbin"
)

// e2eServer is a ptyhost server running in-process.
type e2eServer struct {
	url   string
	token string
	dir   string
}

// startServer runs `ptyhost serve` with the HOST plugin and extra flags,
// and stops it when the test ends.
func startServer(t *testing.T, extra ...string) *e2eServer {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{
		"serve", "--listen", "127.0.0.1:0", "--data-dir", dir,
		"--plugin-dir", testbin.PluginDir(t, "host"), "--log-level", "warn",
	}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	outR, outW := io.Pipe()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, stdio{in: strings.NewReader(""), out: outW, err: &stderr})
		outW.CloseWithError(fmt.Errorf("server ended: %v", err))
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("server did not stop\n%s", stderr.String())
		}
	})
	line, err := bufio.NewReader(outR).ReadString('\n')
	if err != nil {
		t.Fatalf("server did not start: %v\n%s", err, stderr.String())
	}
	go io.Copy(io.Discard, outR)
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "ptyhost: serving on ")
	if !ok {
		t.Fatalf("unexpected first line %q", line)
	}
	s := &e2eServer{url: url, dir: dir}
	for i, a := range extra {
		if a == "--token" {
			s.token = extra[i+1]
		}
	}
	return s
}

func (s *e2eServer) request(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.url+path, r)
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	if method == "POST" || method == "PUT" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (s *e2eServer) create(t *testing.T, body map[string]any) string {
	t.Helper()
	if _, ok := body["environment_id"]; !ok {
		body["environment_id"] = "host"
	}
	code, out := s.request(t, "POST", "/api/v1/sessions", body)
	if code != 201 {
		t.Fatalf("create: %d %v", code, out)
	}
	id := out["id"].(string)
	t.Cleanup(func() {
		// Best effort: the test may have stopped the server.
		req, _ := http.NewRequest("DELETE", s.url+"/api/v1/sessions/"+id, nil)
		if s.token != "" {
			req.Header.Set("Authorization", "Bearer "+s.token)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	return id
}

// wsTerm is a WebSocket client that keeps everything the server sent.
type wsTerm struct {
	t    *testing.T
	c    *websocket.Conn
	out  []byte
	ctrl []map[string]any
}

func (s *e2eServer) attach(t *testing.T, id string) *wsTerm {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	hdr := http.Header{}
	if s.token != "" {
		hdr.Set("Authorization", "Bearer "+s.token)
	}
	url := "ws" + strings.TrimPrefix(s.url, "http") + "/api/v1/sessions/" + id + "/attach"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"ptyhost.v1"}, HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("attach %s: %v", id, err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	tm := &wsTerm{t: t, c: c}
	if m := tm.until(func() bool { return len(tm.ctrl) > 0 }); m != nil {
		t.Fatal(m)
	}
	if tm.ctrl[0]["type"] != "hello" {
		t.Fatalf("first message %v", tm.ctrl[0])
	}
	return tm
}

// until reads messages until cond holds; it returns an error if the
// connection ends first or 15 s pass.
func (tm *wsTerm) until(cond func() bool) error {
	ctx, cancel := context.WithTimeout(tm.t.Context(), 15*time.Second)
	defer cancel()
	for !cond() {
		typ, b, err := tm.c.Read(ctx)
		if err != nil {
			return fmt.Errorf("after %d output bytes (tail %q): %w", len(tm.out), tail(tm.out), err)
		}
		if typ == websocket.MessageBinary {
			tm.out = append(tm.out, b...)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("text frame %q is not JSON", b)
		}
		if m["type"] == "reset" {
			return fmt.Errorf("client was reset: %v", m)
		}
		tm.ctrl = append(tm.ctrl, m)
	}
	return nil
}

func tail(b []byte) []byte { return b[max(0, len(b)-200):] }

func (tm *wsTerm) waitOutput(s string) {
	tm.t.Helper()
	if err := tm.until(func() bool { return bytes.Contains(tm.out, []byte(s)) }); err != nil {
		tm.t.Fatalf("waiting for %q: %v", s, err)
	}
}

func (tm *wsTerm) waitControl(typ string) map[string]any {
	tm.t.Helper()
	seen := len(tm.ctrl)
	var found map[string]any
	err := tm.until(func() bool {
		for _, m := range tm.ctrl[seen:] {
			if m["type"] == typ {
				found = m
				return true
			}
		}
		return false
	})
	if err != nil {
		tm.t.Fatalf("waiting for %q: %v", typ, err)
	}
	return found
}

func (tm *wsTerm) send(s string) {
	tm.t.Helper()
	if err := tm.c.Write(tm.t.Context(), websocket.MessageBinary, []byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

func (tm *wsTerm) control(s string) {
	tm.t.Helper()
	if err := tm.c.Write(tm.t.Context(), websocket.MessageText, []byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

func TestE2EShellTwoClients(t *testing.T) {
	srv := startServer(t)
	cwd := filepath.Join(t.TempDir(), "dir with spaces")
	os.Mkdir(cwd, 0o755)
	id := srv.create(t, map[string]any{"command": []string{"/bin/sh"}, "worktree_path": cwd, "env": map[string]string{"GREETING": "hej"}})
	a, b := srv.attach(t, id), srv.attach(t, id)
	a.send("echo $((6*7)) $GREETING $TERM; pwd\r")
	for _, c := range []*wsTerm{a, b} {
		c.waitOutput("42 hej xterm-256color")
		c.waitOutput(cwd)
	}
	b.send("echo typed-by-b\r")
	for _, c := range []*wsTerm{a, b} {
		c.waitOutput("typed-by-b\r\n")
	}
	code, rec := srv.request(t, "GET", "/api/v1/sessions/"+id, nil)
	if code != 200 || rec["status"] != "ACTIVE" || rec["active_connections"] != 2.0 {
		t.Errorf("session = %d %v", code, rec)
	}

	// A late joiner sees the history; so does one that left and returns.
	late := srv.attach(t, id)
	late.waitOutput("typed-by-b")
	a.c.Close(websocket.StatusNormalClosure, "")
	b.send("echo after-a-left\r")
	again := srv.attach(t, id)
	again.waitOutput("42 hej")
	again.waitOutput("after-a-left")

	// Resize: every client is told; the shell sees it.
	again.control(`{"type":"resize","cols":100,"rows":31}`)
	for _, c := range []*wsTerm{b, late, again} {
		if m := c.waitControl("resize"); m["cols"] != 100.0 || m["rows"] != 31.0 {
			t.Errorf("resize message %v", m)
		}
	}
	b.send("stty size\r")
	b.waitOutput("31 100")

	// Bad input from one client hurts nobody.
	late.control(`{"type":"resize","cols":0,"rows":0}`)
	if m := late.waitControl("error"); !strings.Contains(fmt.Sprint(m["message"]), "1 to 1000") {
		t.Errorf("error = %v", m)
	}
	late.control(`not json`)
	late.waitControl("error")
	b.send("echo still-fine\r")
	late.waitOutput("still-fine")

	// Exit: all output, then the exit message, then a normal close.
	b.send("printf done; exit 7\r")
	m := late.waitControl("exit")
	if m["code"] != 7.0 {
		t.Errorf("exit = %v", m)
	}
	if !bytes.Contains(late.out, []byte("done")) {
		t.Error("output before exit lost")
	}
	err := late.until(func() bool { return false })
	if websocket.CloseStatus(errors.Unwrap(err)) != websocket.StatusNormalClosure && websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Errorf("close: %v", err)
	}
	code, rec = srv.request(t, "GET", "/api/v1/sessions/"+id, nil)
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
		code    float64
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
			id := srv.create(t, map[string]any{"command": []string{"/bin/sh", "-c", "read go; " + tt.command}})
			c := srv.attach(t, id)
			c.send("go\r")
			m := c.waitControl("exit")
			if m["code"] != tt.code {
				t.Errorf("exit = %v, want code %v", m, tt.code)
			}
			if err := tt.want(c.out); err != nil {
				t.Error(err)
			}
			if tt.code == 137 && m["signal"] != "SIGKILL" {
				t.Errorf("signal = %v", m["signal"])
			}
		})
	}
}

func TestE2EEarlyOutputIsReplayed(t *testing.T) {
	srv := startServer(t)
	// The command marks in a file when its output is written; the client
	// attaches only after that, so it can see the output only by replay.
	mark := filepath.Join(t.TempDir(), "written")
	id := srv.create(t, map[string]any{"command": []string{"/bin/sh", "-c", "echo early bird; touch " + mark + "; exec cat"}})
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
	c := srv.attach(t, id)
	if c.ctrl[0]["offset"] != 0.0 {
		t.Errorf("hello = %v, want the replay from offset 0", c.ctrl[0])
	}
	c.waitOutput("early bird")
}

func TestE2ERecreateHasNoDuplicateOutput(t *testing.T) {
	srv := startServer(t)
	body := map[string]any{"id": "again", "command": []string{"/bin/sh", "-c", "echo first-life; exec cat"}}
	srv.create(t, body)
	c := srv.attach(t, "again")
	c.waitOutput("first-life")
	if code, _ := srv.request(t, "DELETE", "/api/v1/sessions/again", nil); code != 204 {
		t.Fatal(code)
	}
	if err := c.until(func() bool { return false }); websocket.CloseStatus(errors.Unwrap(err)) != websocket.StatusNormalClosure && !strings.Contains(err.Error(), "Session destroyed") {
		t.Errorf("close on destroy: %v", err)
	}
	body["command"] = []string{"/bin/sh", "-c", "echo second-life; exec cat"}
	srv.create(t, body)
	d := srv.attach(t, "again")
	d.waitOutput("second-life")
	if bytes.Contains(d.out, []byte("first-life")) {
		t.Errorf("old output replayed: %q", d.out)
	}
	d.send("ping\r")
	d.waitOutput("ping\r\nping")
	if n := bytes.Count(d.out, []byte("second-life")); n != 1 {
		t.Errorf("second-life %d times", n)
	}
}

func TestE2EBadRequests(t *testing.T) {
	srv := startServer(t, "--token", "t0ken")
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
			code, out := srv.request(t, "POST", "/api/v1/sessions", tt.body)
			if code != tt.want || !strings.Contains(fmt.Sprint(out["error"]), tt.msg) {
				t.Errorf("%d %v, want %d mentioning %q", code, out, tt.want, tt.msg)
			}
		})
	}
	code, out := srv.request(t, "POST", "/api/v1/environments", map[string]any{"type": "HOST", "config": map[string]any{"shel": "/bin/sh"}})
	if code != 400 || !strings.Contains(fmt.Sprint(out["error"]), "shel") {
		t.Errorf("bad config: %d %v", code, out)
	}
	req, _ := http.NewRequest("GET", srv.url+"/api/v1/sessions", nil)
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
	if code, out := srv.request(t, "GET", "/api/v1/sessions", nil); code != 200 {
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
		{"--log-format", "xml"},
		{"--listen", "nowhere"},
		{"extra-arg"},
	} {
		err := run(t.Context(), append([]string{"serve", "--data-dir", t.TempDir()}, bad...), stdio{out: io.Discard, err: io.Discard})
		if !errors.As(err, &ue) {
			t.Errorf("%v: err = %v, want a usage error", bad, err)
		}
	}
}

// TestE2EAttachCommand runs the real ptyhost binary on a real PTY.
func TestE2EAttachCommand(t *testing.T) {
	srv := startServer(t)
	id := srv.create(t, map[string]any{"command": []string{"/bin/sh"}})
	cmd := exec.Command(testbin.Ptyhost(t), "attach", "--server", srv.url, id)
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
	if code, rec := srv.request(t, "GET", "/api/v1/sessions/"+id, nil); code != 200 || rec["status"] == "TERMINATED" {
		t.Errorf("after detach: %v", rec)
	}

	// Attach again; the session's exit code becomes ptyhost's.
	cmd = exec.Command(testbin.Ptyhost(t), "attach", "--server", srv.url, id)
	ptmx2, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx2.Close()
	out2 := &ptyReader{f: ptmx2}
	go out2.run()
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

// ptyReader collects what a PTY's program writes.
type ptyReader struct {
	f   *os.File
	buf syncBuffer
}

func (r *ptyReader) run() { io.Copy(&r.buf, r.f) }

func (r *ptyReader) wait(t *testing.T, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !re.MatchString(r.buf.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s; screen tail %q", re, tail([]byte(r.buf.String())))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
