package main

// End-to-end tests: the real `ptyhost serve` binary with the real HOST and
// SSH plugin binaries, driven over REST and WebSocket (ptyhost.v1), against
// the real sshd of sshd.sh and private sshds the tests kill or freeze.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/ssh"

	"github.com/ptyhost/ptyhost/internal/testbin"
)

// server is a `ptyhost serve` process.
type server struct {
	url    string
	stderr *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer runs the server binary with the HOST and SSH plugins. The
// plugins inherit its environment (minus PTYHOST_*), which holds the test
// secrets under the names TestMain gave them.
func startServer(t *testing.T) *server {
	t.Helper()
	cmd := exec.Command(testbin.Ptyhost(t), "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--plugin-dir", testbin.PluginDir(t, "host", "ssh"), "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	srv := &server{stderr: &syncBuffer{}}
	cmd.Stderr = srv.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	drained := make(chan struct{})
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { <-drained; done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server: %v\n%s", err, srv.stderr)
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("server did not stop\n%s", srv.stderr)
		}
	})
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	go func() {
		_, _ = io.Copy(io.Discard, r)
		close(drained)
	}()
	if err != nil {
		t.Fatalf("server did not start: %v\n%s", err, srv.stderr)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "ptyhost: serving on ")
	if !ok {
		t.Fatalf("unexpected first line %q", line)
	}
	srv.url = url
	return srv
}

func (s *server) request(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	// Not t.Context(): cleanups make requests too.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// createEnv creates an SSH environment and returns its id.
func (s *server) createEnv(t *testing.T, id string, config json.RawMessage) string {
	t.Helper()
	code, out := s.request(t, "POST", "/api/v1/environments", map[string]any{"id": id, "type": "SSH", "config": config})
	if code != 201 {
		t.Fatalf("create environment: %d %v", code, out)
	}
	return id
}

// createSession creates a session and returns its id; the test's cleanup
// destroys it.
func (s *server) createSession(t *testing.T, body map[string]any) string {
	t.Helper()
	code, out := s.request(t, "POST", "/api/v1/sessions", body)
	if code != 201 {
		t.Fatalf("create session: %d %v", code, out)
	}
	id := out["id"].(string)
	t.Cleanup(func() { s.request(t, "DELETE", "/api/v1/sessions/"+id, nil) })
	return id
}

func (s *server) session(t *testing.T, id string) map[string]any {
	t.Helper()
	code, out := s.request(t, "GET", "/api/v1/sessions/"+id, nil)
	if code != 200 {
		t.Fatalf("get session %s: %d %v", id, code, out)
	}
	return out
}

// wsTerm is a WebSocket client that keeps everything the server sent.
type wsTerm struct {
	t    *testing.T
	c    *websocket.Conn
	out  []byte
	ctrl []map[string]any
}

func (s *server) attach(t *testing.T, id string) *wsTerm {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(s.url, "http") + "/api/v1/sessions/" + id + "/attach"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"ptyhost.v1"}})
	if err != nil {
		t.Fatalf("attach %s: %v", id, err)
	}
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	tm := &wsTerm{t: t, c: c}
	if err := tm.until(func() bool { return len(tm.ctrl) > 0 }); err != nil {
		t.Fatal(err)
	}
	if tm.ctrl[0]["type"] != "hello" {
		t.Fatalf("first message %v", tm.ctrl[0])
	}
	return tm
}

// until reads messages until cond holds; it fails if the connection ends
// first or 20 s pass.
func (tm *wsTerm) until(cond func() bool) error {
	ctx, cancel := context.WithTimeout(tm.t.Context(), 20*time.Second)
	defer cancel()
	for !cond() {
		typ, b, err := tm.c.Read(ctx)
		if err != nil {
			return fmt.Errorf("after %d output bytes (tail %q): %w", len(tm.out), tm.out[max(0, len(tm.out)-300):], err)
		}
		if typ == websocket.MessageBinary {
			tm.out = append(tm.out, b...)
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("text frame %q is not JSON", b)
		}
		tm.ctrl = append(tm.ctrl, m)
	}
	return nil
}

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

func contains(v any, s string) bool { return strings.Contains(fmt.Sprint(v), s) }

func TestServer(t *testing.T) {
	s := testSSHD(t)
	srv := startServer(t)

	t.Run("type, size, resize, pwd, env, exit", func(t *testing.T) {
		t.Parallel()
		env := srv.createEnv(t, "ssh-basic", s.config(t, 0, map[string]any{"env": map[string]string{"FROM_CONFIG": "cfg"}}))
		dir := s.remoteDir(t, "dir with spaces")
		id := srv.createSession(t, map[string]any{
			"environment_id": env, "worktree_path": dir, "command": []string{"/bin/sh"}, "cols": 101, "rows": 37,
			"env": map[string]string{"PTYHOST_TEST_GREETING": "hej", "OTHER_GREETING": "hallo"},
		})
		c := srv.attach(t, id)
		c.send("stty size; pwd; echo \"[$PTYHOST_TEST_GREETING $OTHER_GREETING $FROM_CONFIG $TERM $COLORTERM $((6*7))]\"\r")
		c.waitOutput("37 101\r\n")
		c.waitOutput(dir + "\r\n")
		c.waitOutput("[hej hallo cfg xterm-256color truecolor 42]")
		c.control(`{"type":"resize","cols":120,"rows":40}`)
		if m := c.waitControl("resize"); m["cols"] != 120.0 || m["rows"] != 40.0 {
			t.Errorf("resize message %v", m)
		}
		c.send("stty size\r")
		c.waitOutput("40 120\r\n")
		c.send("printf 'the end'; exit 7\r")
		m := c.waitControl("exit")
		if m["code"] != 7.0 || m["reason"] != "" {
			t.Errorf("exit = %v, want code 7", m)
		}
		if !bytes.Contains(c.out, []byte("the end")) {
			t.Error("output before the exit was lost")
		}
		if rec := srv.session(t, id); rec["status"] != "TERMINATED" || rec["exit_code"] != 7.0 {
			t.Errorf("session = %v", rec)
		}
	})

	t.Run("killed by a signal", func(t *testing.T) {
		t.Parallel()
		env := srv.createEnv(t, "ssh-signal", s.config(t, 0, nil))
		id := srv.createSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "read go; echo bye; kill -KILL $$"}})
		c := srv.attach(t, id)
		c.send("go\r")
		m := c.waitControl("exit")
		if m["code"] != 137.0 || m["signal"] != "SIGKILL" || m["reason"] != "" {
			t.Errorf("exit = %v, want 137 SIGKILL", m)
		}
		c.waitOutput("bye")
		if rec := srv.session(t, id); rec["status"] != "TERMINATED" || rec["exit_signal"] != "SIGKILL" {
			t.Errorf("session = %v", rec)
		}
	})

	t.Run("destroy kills the remote command", func(t *testing.T) {
		t.Parallel()
		env := srv.createEnv(t, "ssh-destroy", s.config(t, 0, nil))
		id := srv.createSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "echo pid=$$; exec sleep 1000"}})
		c := srv.attach(t, id)
		c.waitOutput("pid=")
		var pid int
		fmt.Sscanf(string(c.out[bytes.Index(c.out, []byte("pid="))+4:]), "%d", &pid)
		if code, _ := srv.request(t, "DELETE", "/api/v1/sessions/"+id, nil); code != 204 {
			t.Fatalf("delete: %d", code)
		}
		if !waitFor(10*time.Second, func() bool { return syscall.Kill(pid, 0) != nil }) {
			t.Errorf("remote process %d survived the session's destruction", pid)
		}
	})

	t.Run("host keys", func(t *testing.T) {
		t.Parallel()
		offered := ssh.FingerprintSHA256(s.hostKey(t))
		other := writeKey(t, filepath.Join(t.TempDir(), "other"), "")
		changed := writeKnownHosts(t, s.host, s.port, other)

		tests := []struct {
			name   string
			config map[string]any
			want   []string
		}{
			{"unknown, strict", map[string]any{"known_hosts": filepath.Join(t.TempDir(), "known_hosts")},
				[]string{"is unknown", "host_key_check strict", offered, "ssh-keyscan -p"}},
			{"changed, strict", map[string]any{"known_hosts": changed},
				[]string{"host key mismatch", changed + ":2 has ssh-ed25519 " + ssh.FingerprintSHA256(other), "offered ssh-ed25519 " + offered, "man-in-the-middle"}},
			{"changed, accept-new", map[string]any{"known_hosts": changed, "host_key_check": "accept-new"},
				[]string{"host key mismatch", offered}},
		}
		for i, tt := range tests {
			env := srv.createEnv(t, fmt.Sprintf("ssh-hostkey-%d", i), s.config(t, 0, tt.config))
			code, out := srv.request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": env, "command": []string{"true"}})
			if code != 502 {
				t.Errorf("%s: %d %v, want 502", tt.name, code, out)
			}
			for _, w := range tt.want {
				if !contains(out["error"], w) {
					t.Errorf("%s: error %q does not mention %q", tt.name, out["error"], w)
				}
			}
		}

		// accept-new records the key of a new host, in a new file, and
		// uses it.
		kh := filepath.Join(t.TempDir(), "new dir", "known_hosts")
		env := srv.createEnv(t, "ssh-accept-new", s.config(t, 0, map[string]any{"known_hosts": kh, "host_key_check": "accept-new"}))
		id := srv.createSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "echo accepted"}})
		srv.attach(t, id).waitOutput("accepted")
		b, err := os.ReadFile(kh)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("[%s]:%d %s", s.host, s.port, ssh.MarshalAuthorizedKey(s.hostKey(t)))
		if string(b) != want {
			t.Errorf("known_hosts = %q, want %q", b, want)
		}
		if fi, err := os.Stat(kh); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("known_hosts mode: %v %v", fi.Mode(), err)
		}
		// Strict now accepts it.
		env = srv.createEnv(t, "ssh-accepted-strict", s.config(t, 0, map[string]any{"known_hosts": kh}))
		srv.attach(t, srv.createSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "echo strict-ok"}})).waitOutput("strict-ok")
	})

	t.Run("authentication", func(t *testing.T) {
		t.Parallel()
		wrongKey := filepath.Join(t.TempDir(), "wrong key")
		writeKey(t, wrongKey, "")
		for i, tt := range []struct {
			name   string
			config map[string]any
			code   int
			want   []string
		}{
			{"wrong key", map[string]any{"identity_file": wrongKey}, 502, []string{"authentication failed for " + s.user, "identity_file " + wrongKey}},
			{"wrong password", map[string]any{"identity_file": nil, "password_env": envWrongPassword}, 502, []string{"authentication failed", "password from $" + envWrongPassword}},
			{"password", map[string]any{"identity_file": nil, "password_env": envPassword}, 201, nil},
			{"passphrase-protected key", map[string]any{"identity_file": s.keyEnc, "passphrase_env": envPassphrase}, 201, nil},
		} {
			env := srv.createEnv(t, fmt.Sprintf("ssh-auth-%d", i), s.config(t, 0, tt.config))
			code, out := srv.request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "echo logged-in; sleep 1000"}})
			if code != tt.code {
				t.Errorf("%s: %d %v, want %d", tt.name, code, out, tt.code)
				continue
			}
			for _, w := range tt.want {
				if !contains(out["error"], w) {
					t.Errorf("%s: error %q does not mention %q", tt.name, out["error"], w)
				}
			}
			if contains(out, os.Getenv(envWrongPassword)) || contains(out, os.Getenv(envPassword)) {
				t.Errorf("%s: the response shows the password: %v", tt.name, out)
			}
			if code == 201 {
				id := out["id"].(string)
				srv.attach(t, id).waitOutput("logged-in")
				srv.request(t, "DELETE", "/api/v1/sessions/"+id, nil)
			}
		}
		if strings.Contains(srv.stderr.String(), os.Getenv(envPassword)) {
			t.Error("the server's log shows the password")
		}
	})

	t.Run("20 sessions over two connections at the default MaxSessions, linger, reconnect", func(t *testing.T) {
		t.Parallel()
		priv := s.startPrivate(t)
		if got := priv.setting(t, "maxsessions"); got != "10" {
			t.Fatalf("the private sshd's MaxSessions is %s, want OpenSSH's default 10", got)
		}
		env := srv.createEnv(t, "ssh-twenty", s.config(t, priv.port, map[string]any{"linger": "1s"}))
		ids := make([]string, 20)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				code, out := srv.request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": env,
					"command": []string{"/bin/sh", "-c", fmt.Sprintf("echo session-%d; exec cat", i)}})
				if code != 201 {
					t.Errorf("session %d: %d %v", i, code, out)
					return
				}
				ids[i] = out["id"].(string)
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i, id := range ids {
			c := srv.attach(t, id)
			c.waitOutput(fmt.Sprintf("session-%d", i))
			c.send("echo-me\r")
			c.waitOutput("echo-me\r\necho-me")
		}
		// Ten sessions a connection, as many as the server allows.
		if n, a := established(t, priv.port), priv.accepted(); n != 2 || a != 2 {
			t.Errorf("%d TCP connections and %d logins for 20 sessions, want 2 and 2", n, a)
		}
		for _, id := range ids {
			srv.request(t, "DELETE", "/api/v1/sessions/"+id, nil)
		}
		// Within the linger, a new session reuses the connection...
		id := srv.createSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "echo again; exec cat"}})
		srv.attach(t, id).waitOutput("again")
		if a := priv.accepted(); a != 2 {
			t.Errorf("%d logins after a re-create within the linger, want 2", a)
		}
		srv.request(t, "DELETE", "/api/v1/sessions/"+id, nil)
		// ...and after it the connection is closed.
		if !waitFor(10*time.Second, func() bool { return established(t, priv.port) == 0 }) {
			t.Errorf("%d connections left after the linger", established(t, priv.port))
		}
		// The next session reconnects.
		id = srv.createSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "echo reconnected; exec cat"}})
		srv.attach(t, id).waitOutput("reconnected")
		if a := priv.accepted(); a != 3 {
			t.Errorf("%d logins, want 3", a)
		}
	})

	t.Run("sshd killed mid-session", func(t *testing.T) {
		t.Parallel()
		priv := s.startPrivate(t)
		env := srv.createEnv(t, "ssh-killed", s.config(t, priv.port, nil))
		var terms []*wsTerm
		var ids []string
		for i := range 2 {
			id := srv.createSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh"}})
			c := srv.attach(t, id)
			c.send(fmt.Sprintf("echo alive-%d\r", i))
			c.waitOutput(fmt.Sprintf("alive-%d\r\n", i))
			terms, ids = append(terms, c), append(ids, id)
		}
		priv.signal(syscall.SIGKILL)
		want := fmt.Sprintf("ssh connection to 127.0.0.1:%d lost", priv.port)
		for i, c := range terms {
			m := c.waitControl("exit")
			if m["code"] != -1.0 || !contains(m["reason"], want) {
				t.Errorf("exit = %v, want code -1 and a reason with %q", m, want)
			}
			var rec map[string]any
			waitFor(5*time.Second, func() bool { rec = srv.session(t, ids[i]); return rec["status"] == "ERROR" })
			if rec["status"] != "ERROR" || !contains(rec["status_reason"], want) {
				t.Errorf("session = %v, want ERROR with the reason", rec)
			}
		}
		// The host is down now: creating a session says so, at once.
		start := time.Now()
		code, out := srv.request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": env, "command": []string{"true"}})
		if code != 503 || !contains(out["error"], "connection refused") || time.Since(start) > 5*time.Second {
			t.Errorf("create with sshd down: %d %v after %v, want 503 'connection refused'", code, out, time.Since(start))
		}
	})

	t.Run("keepalive detects a dead connection", func(t *testing.T) {
		t.Parallel()
		priv := s.startPrivate(t)
		env := srv.createEnv(t, "ssh-keepalive", s.config(t, priv.port, map[string]any{"keepalive_interval": "300ms", "keepalive_count": 2}))
		id := srv.createSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh"}})
		c := srv.attach(t, id)
		c.send("echo alive\r")
		c.waitOutput("alive\r\n")
		// Freeze the server: the TCP connection stays up, nothing answers.
		priv.signal(syscall.SIGSTOP)
		start := time.Now()
		m := c.waitControl("exit")
		if !contains(m["reason"], "keepalive unanswered") || m["code"] != -1.0 {
			t.Errorf("exit = %v, want a keepalive reason", m)
		}
		// 2 unanswered at 300ms apart: about 900ms.
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the dead connection was noticed after %v", d)
		}
		waitFor(5*time.Second, func() bool { return srv.session(t, id)["status"] == "ERROR" })
		if rec := srv.session(t, id); rec["status"] != "ERROR" || !contains(rec["status_reason"], "keepalive") {
			t.Errorf("session = %v", rec)
		}
		// A frozen host does not hang a create past connect_timeout.
		env = srv.createEnv(t, "ssh-frozen", s.config(t, priv.port, map[string]any{"connect_timeout": "1s"}))
		start = time.Now()
		code, out := srv.request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": env, "command": []string{"true"}})
		if code != 503 || !contains(out["error"], "1s (connect_timeout)") || time.Since(start) > 4*time.Second {
			t.Errorf("create on a frozen host: %d %v after %v, want 503 within about 1s", code, out, time.Since(start))
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		env := srv.createEnv(t, "ssh-refused", s.config(t, freePort(t), nil))
		code, out := srv.request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": env})
		if code != 503 || !contains(out["error"], "cannot reach") {
			t.Errorf("refused: %d %v, want 503", code, out)
		}
	})

	t.Run("bad session requests", func(t *testing.T) {
		t.Parallel()
		priv := s.startPrivate(t)
		env := srv.createEnv(t, "ssh-bad-requests", s.config(t, priv.port, map[string]any{"linger": "300ms"}))
		for _, tt := range []struct {
			name string
			body map[string]any
			want string
		}{
			{"missing dir", map[string]any{"worktree_path": "/no/such dir"}, `working directory "/no/such dir" on 127.0.0.1:`},
			{"relative dir", map[string]any{"worktree_path": "src"}, "not an absolute path"},
			{"missing command", map[string]any{"command": []string{"no-such-program"}}, `command "no-such-program" not found`},
		} {
			tt.body["environment_id"] = env
			code, out := srv.request(t, "POST", "/api/v1/sessions", tt.body)
			if code != 400 || !contains(out["error"], tt.want) {
				t.Errorf("%s: %d %v, want 400 mentioning %q", tt.name, code, out, tt.want)
			}
		}
		// The failed starts left nothing: the connection closes after the
		// linger, as after the last session, and no session remains.
		if !waitFor(10*time.Second, func() bool { return established(t, priv.port) == 0 }) {
			t.Errorf("%d connections left after failed creates", established(t, priv.port))
		}
		if priv.accepted() != 1 {
			t.Errorf("%d logins for 2 failed creates, want 1", priv.accepted())
		}
	})

	t.Run("bad configs", func(t *testing.T) {
		t.Parallel()
		encrypted := s.keyEnc
		for _, tt := range []struct {
			name   string
			config any
			want   string
		}{
			{"unknown field", map[string]any{"host": "h", "hostname": "x"}, `unknown field "hostname"`},
			{"literal password", map[string]any{"host": "h", "password": "hunter2"}, "secrets are never stored"},
			{"no host", map[string]any{"port": 22}, "host is required"},
			{"bad port", map[string]any{"host": "h", "port": 99999}, "port: 99999"},
			{"bad host_key_check", map[string]any{"host": "h", "host_key_check": "ask"}, "host_key_check"},
			{"bad duration", map[string]any{"host": "h", "connect_timeout": "soon"}, "connect_timeout"},
			{"password variable unset", map[string]any{"host": "h", "password_env": "SSHTEST_NOT_SET"}, "SSHTEST_NOT_SET is not set"},
			{"missing identity file", map[string]any{"host": "h", "identity_file": "/no/such/key"}, "/no/such/key does not exist"},
			{"encrypted key without passphrase", map[string]any{"host": "h", "identity_file": encrypted}, "passphrase_env"},
			{"bad jump", map[string]any{"host": "h", "password_env": envPassword, "jump": "b:port"}, "jump"},
			{"not an object", []int{1}, "JSON object"},
		} {
			code, out := srv.request(t, "POST", "/api/v1/environments", map[string]any{"type": "SSH", "config": tt.config})
			if code != 400 || !contains(out["error"], tt.want) {
				t.Errorf("%s: %d %v, want 400 mentioning %q", tt.name, code, out, tt.want)
			}
			if contains(out, "hunter2") {
				t.Errorf("%s: the response shows the password", tt.name)
			}
		}
	})
}
