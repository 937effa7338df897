package main

// Tests through the real server: `ptyhost serve` as a subprocess with the
// HOST and DOCKER plugin binaries, driven over REST and WebSocket as a
// client would.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/internal/testbin"
)

// server is a `ptyhost serve` process.
type server struct {
	url    string
	stderr *syncBuffer
	cmd    *exec.Cmd
	exited chan error // receives Wait's result once
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// firstLine passes on the first line written to it, then discards.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	line chan string
}

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.buf == nil {
		return len(p), nil
	}
	f.buf = append(f.buf, p...)
	if i := bytes.IndexByte(f.buf, '\n'); i >= 0 {
		f.line <- string(f.buf[:i])
		f.buf = nil
	}
	return len(p), nil
}

// startServer runs `ptyhost serve` on a free loopback port with its own
// data directory and the host and docker plugins; the test's cleanup stops
// it (SIGTERM: it closes every session, which removes their containers).
func startServer(t *testing.T, flags ...string) *server {
	t.Helper()
	needDaemon(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PTYHOST_") {
			env = append(env, kv)
		}
	}
	cmd := exec.Command(testbin.Ptyhost(t), "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--plugin-dir", testbin.PluginDir(t, "host", "docker"), "--log-level", "warn")
	cmd.Args = append(cmd.Args, flags...)
	cmd.Env = env
	out := &firstLine{buf: []byte{}, line: make(chan string, 1)}
	s := &server{stderr: &syncBuffer{}, cmd: cmd}
	cmd.Stdout, cmd.Stderr = out, s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	s.exited = exited
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("server did not stop on SIGTERM\n%s", s.stderr)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.stderr)
		}
	})
	select {
	case line := <-out.line:
		url, ok := strings.CutPrefix(line, "ptyhost: serving on ")
		if !ok {
			t.Fatalf("unexpected first line %q", line)
		}
		s.url = url
		s.waitPlugins(t)
	case err := <-exited:
		exited <- err
		t.Fatalf("server exited: %v\n%s", err, s.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not start\n%s", s.stderr)
	}
	return s
}

// waitPlugins waits until every plugin serves: they start in the
// background while the API already answers.
func (s *server) waitPlugins(t testing.TB) {
	t.Helper()
	var last any
	eventually(t, 60*time.Second, "the plugins running", func() bool {
		code, out, err := s.do("GET", "/api/v1/plugins", nil)
		if err != nil || code != http.StatusOK {
			last = fmt.Sprint(code, err)
			return false
		}
		last = out["plugins"]
		list, _ := out["plugins"].([]any)
		for _, p := range list {
			if p, _ := p.(map[string]any); p["state"] != "running" {
				return false
			}
		}
		return len(list) > 0
	})
	_ = last
}

func (s *server) request(t testing.TB, method, path string, body any) (int, map[string]any) {
	t.Helper()
	code, out, err := s.do(method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return code, out
}

// do sends a request and decodes the JSON answer; safe in any goroutine.
func (s *server) do(method, path string, body any) (int, map[string]any, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, s.url+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

// environment creates an environment and fails the test unless it is 201.
func (s *server) environment(t testing.TB, id string, config map[string]any) {
	t.Helper()
	code, out := s.request(t, "POST", "/api/v1/environments", map[string]any{"id": id, "type": "DOCKER", "config": config})
	if code != http.StatusCreated {
		t.Fatalf("create environment %s: %d %v", id, code, out)
	}
}

// create creates a session and fails the test unless it is 201; the
// test's cleanup destroys it.
func (s *server) create(t testing.TB, body map[string]any) string {
	t.Helper()
	code, out := s.request(t, "POST", "/api/v1/sessions", body)
	if code != http.StatusCreated {
		t.Fatalf("create session: %d %v", code, out)
	}
	id := out["id"].(string)
	t.Cleanup(func() { s.request(t, "DELETE", "/api/v1/sessions/"+id, nil) })
	return id
}

func (s *server) session(t testing.TB, id string) map[string]any {
	t.Helper()
	code, out := s.request(t, "GET", "/api/v1/sessions/"+id, nil)
	if code != http.StatusOK {
		t.Fatalf("get session %s: %d %v", id, code, out)
	}
	return out
}

// wsTerm is a WebSocket client of a session that keeps all it received.
type wsTerm struct {
	t    testing.TB
	c    *websocket.Conn
	out  []byte
	ctrl []map[string]any
}

func (s *server) attach(t testing.TB, id string) *wsTerm {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(s.url, "http") + "/api/v1/sessions/" + id + "/attach"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"ptyhost.v1"}})
	if err != nil {
		t.Fatalf("attach %s: %v", id, err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	tm := &wsTerm{t: t, c: c}
	tm.waitControl("hello")
	return tm
}

// until reads messages until cond holds; it fails if the connection ends
// first or 30 s pass.
func (tm *wsTerm) until(what string, cond func() bool) {
	tm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for !cond() {
		typ, b, err := tm.c.Read(ctx)
		if err != nil {
			tm.t.Fatalf("waiting for %s: %v; output so far %q, control %v", what, err, tail(tm.out), tm.ctrl)
		}
		if typ == websocket.MessageBinary {
			tm.out = append(tm.out, b...)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			tm.t.Fatalf("text frame %q is not JSON", b)
		}
		tm.ctrl = append(tm.ctrl, m)
	}
}

func tail(b []byte) []byte { return b[max(0, len(b)-300):] }

func (tm *wsTerm) waitOutput(s string) {
	tm.t.Helper()
	tm.until(fmt.Sprintf("%q", s), func() bool { return bytes.Contains(tm.out, []byte(s)) })
}

func (tm *wsTerm) waitControl(typ string) map[string]any {
	tm.t.Helper()
	seen := len(tm.ctrl)
	var found map[string]any
	tm.until(typ+" message", func() bool {
		for _, m := range tm.ctrl[seen:] {
			if m["type"] == typ {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func (tm *wsTerm) send(s string) {
	tm.t.Helper()
	if err := tm.c.Write(context.Background(), websocket.MessageBinary, []byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

func (tm *wsTerm) control(s string) {
	tm.t.Helper()
	if err := tm.c.Write(context.Background(), websocket.MessageText, []byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

func TestServer(t *testing.T) {
	srv := startServer(t)
	cli := dockerClient(t)
	srv.environment(t, "dock", map[string]any{"image": testImage(), "pull": "never"})
	noContainers := func(t *testing.T, label string) {
		t.Helper()
		eventually(t, 30*time.Second, "no container labelled "+label, func() bool { return len(labelled(t, cli, label)) == 0 })
	}

	t.Run("bad configs", func(t *testing.T) {
		tests := []struct {
			name   string
			config any
			reason string
		}{
			{"no image", map[string]any{}, `"image" or "container" is required`},
			{"unknown field", map[string]any{"image": "x", "imagee": "y"}, `unknown field "imagee"`},
			{"both", map[string]any{"image": "x", "container": "y"}, "exclusive"},
			{"bad pull", map[string]any{"image": "x", "pull": "sometimes"}, `pull "sometimes"`},
			{"bad memory", map[string]any{"image": "x", "memory": "lots"}, "memory"},
			{"relative mount", map[string]any{"image": "x", "mounts": []any{map[string]any{"source": "rel", "target": "/x"}}}, "not an absolute path"},
			{"exec with limits", map[string]any{"container": "c", "cpus": 1}, "cpus does not apply to exec mode"},
			{"http host", map[string]any{"image": "x", "host": "http://127.0.0.1:2375"}, "scheme http is not accepted"},
			{"unknown capability", map[string]any{"image": "x", "cap_add": []string{"NOT_A_CAP"}}, `"NOT_A_CAP" is not a Linux capability`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, out := srv.request(t, "POST", "/api/v1/environments", map[string]any{"type": "DOCKER", "config": tt.config})
				if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), tt.reason) {
					t.Errorf("create = %d %v, want 400 mentioning %q", code, out, tt.reason)
				}
			})
		}
	})

	t.Run("type, read, size, exit", func(t *testing.T) {
		dir := t.TempDir()
		id := srv.create(t, map[string]any{"environment_id": "dock", "command": []string{"/bin/sh"},
			"worktree_path": dir, "cols": 91, "rows": 33, "env": map[string]string{"GREETING": "hej"}})
		tm := srv.attach(t, id)
		tm.send("stty size\r")
		tm.waitOutput("33 91")
		tm.control(`{"type":"resize","cols":120,"rows":40}`)
		tm.waitControl("resize")
		tm.send("stty size\r")
		tm.waitOutput("40 120")
		tm.send("echo $((6*7)) $GREETING $TERM $COLORTERM $PWD; printf '\\360\\237\\231\\202 \\303\\251t\\303\\251\\n'\r")
		tm.waitOutput("42 hej xterm-256color truecolor /workspace")
		tm.waitOutput("🙂 été")
		if len(sessionContainers(t, cli, id)) != 1 {
			t.Error("no container labelled with the session")
		}
		tm.send("exit 7\r")
		if m := tm.waitControl("exit"); m["code"] != 7.0 || m["signal"] != "" {
			t.Errorf("exit message %v", m)
		}
		if rec := srv.session(t, id); rec["status"] != "TERMINATED" || rec["exit_code"] != 7.0 {
			t.Errorf("session after exit: %v", rec)
		}
		noContainers(t, labelSession+"="+id)
	})

	t.Run("COLORTERM overridden by the session", func(t *testing.T) {
		id := srv.create(t, map[string]any{"environment_id": "dock", "env": map[string]string{"COLORTERM": "24bit"},
			"command": []string{"/bin/sh", "-c", "echo colorterm=$COLORTERM.; read x"}})
		srv.attach(t, id).waitOutput("colorterm=24bit.")
	})

	t.Run("signal", func(t *testing.T) {
		id := srv.create(t, map[string]any{"environment_id": "dock", "command": []string{"/bin/sh", "-c", "read x; kill -TERM $$"}})
		tm := srv.attach(t, id)
		tm.send("\r")
		if m := tm.waitControl("exit"); m["code"] != 143.0 || m["signal"] != "SIGTERM" {
			t.Errorf("exit message %v", m)
		}
		if rec := srv.session(t, id); rec["exit_signal"] != "SIGTERM" || rec["status"] != "TERMINATED" {
			t.Errorf("session after the signal: %v", rec)
		}
	})

	t.Run("destroy", func(t *testing.T) {
		id := srv.create(t, map[string]any{"environment_id": "dock", "command": []string{"/bin/sh", "-c", "echo ready; sleep 100000"}})
		tm := srv.attach(t, id)
		tm.waitOutput("ready")
		if code, _ := srv.request(t, "DELETE", "/api/v1/sessions/"+id, nil); code != http.StatusNoContent {
			t.Fatalf("delete: %d", code)
		}
		noContainers(t, labelSession+"="+id)
		if rec := srv.session(t, id); rec["status"] != "TERMINATED" {
			t.Errorf("session after destroy: %v", rec)
		}
	})

	t.Run("missing image, pull never", func(t *testing.T) {
		srv.environment(t, "missing", map[string]any{"image": "ptyhost-test-missing:none", "pull": "never"})
		code, out := srv.request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": "missing", "command": []string{"/bin/true"}})
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "image ptyhost-test-missing:none not present and pull is never") {
			t.Errorf("create = %d %v", code, out)
		}
		if left := labelled(t, cli, labelEnvironment+"=missing"); len(left) != 0 {
			t.Errorf("%d container(s) left", len(left))
		}
	})

	t.Run("unreachable daemon", func(t *testing.T) {
		srv.environment(t, "gone", map[string]any{"image": testImage(), "host": "unix:///nonexistent/docker.sock"})
		code, out := srv.request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": "gone"})
		if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(out["error"]), "/nonexistent/docker.sock") {
			t.Errorf("create = %d %v, want 503 naming the daemon", code, out)
		}
	})

	t.Run("exec into a running container", func(t *testing.T) {
		target := startTarget(t, cli)
		srv.environment(t, "exec", map[string]any{"container": target})
		id := srv.create(t, map[string]any{"environment_id": "exec", "cols": 77, "rows": 22})
		tm := srv.attach(t, id)
		tm.send("echo exec-$((1+1)); stty size; sleep 100000\r")
		tm.waitOutput("exec-2")
		tm.waitOutput("22 77")
		if code, _ := srv.request(t, "DELETE", "/api/v1/sessions/"+id, nil); code != http.StatusNoContent {
			t.Fatalf("delete: %d", code)
		}
		// The exec'd shell and its sleep are gone; docker-init and the
		// container's own sleep remain.
		eventually(t, 30*time.Second, "the exec'd processes end", func() bool {
			top, err := cli.ContainerTop(context.Background(), target, client.ContainerTopOptions{})
			return err == nil && len(top.Processes) == 2
		})
		if !targetRunning(t, cli, target) {
			t.Error("ending the session stopped the container")
		}
	})

	t.Run("20 concurrent sessions", func(t *testing.T) {
		const n = 20
		srv.environment(t, "many", map[string]any{"image": testImage(), "pull": "never"})
		ids := make([]string, n)
		errs := make(chan error, n)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				code, out, err := srv.do("POST", "/api/v1/sessions", map[string]any{
					"environment_id": "many", "command": []string{"/bin/sh", "-c", "echo hi; read x"}})
				if code != http.StatusCreated {
					errs <- fmt.Errorf("create %d: %d %v %v", i, code, out, err)
					return
				}
				ids[i] = out["id"].(string)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		t.Logf("%d sessions created in %v", n, time.Since(start))
		if got := len(labelled(t, cli, labelEnvironment+"=many")); got != n {
			t.Errorf("%d containers for %d sessions", got, n)
		}
		for _, id := range ids {
			if id == "" {
				continue
			}
			wg.Go(func() {
				if code, _, err := srv.do("DELETE", "/api/v1/sessions/"+id, nil); code != http.StatusNoContent {
					t.Errorf("delete %s: %d %v", id, code, err)
				}
			})
		}
		wg.Wait()
		noContainers(t, labelEnvironment+"=many")
	})
}
