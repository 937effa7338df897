package main

// End-to-end tests: the real `ptyhost serve` binary with the real HOST and
// SSH plugin binaries, driven over REST and WebSocket (ptyhost.v1), against
// the real sshd of sshd.sh and private sshds the tests kill or freeze.

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
	"golang.org/x/crypto/ssh"
)

// startServer runs the server binary with the HOST and SSH plugins. The
// plugins inherit its environment (minus PTYHOST_*), which holds the test
// secrets under the names TestMain gave them.
func startServer(t *testing.T) *e2etest.Server {
	t.Helper()
	return e2etest.Start(t, e2etest.Options{Plugins: []string{"host", "ssh"}})
}

func contains(v any, s string) bool { return strings.Contains(fmt.Sprint(v), s) }

func TestServer(t *testing.T) {
	s := testSSHD(t)
	srv := startServer(t)
	// aliveShell starts a private sshd the test may freeze, an environment
	// name on it with settings, and a shell session there, attached and
	// answering.
	aliveShell := func(t *testing.T, name string, settings map[string]any) (*privateSSHD, string, *e2etest.Term) {
		t.Helper()
		priv := s.startPrivate(t)
		env := srv.CreateEnvironment(t, name, "SSH", s.config(t, priv.port, settings))
		id := srv.CreateSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh"}})
		c := srv.Attach(t, id)
		c.Send("echo alive\r")
		c.WaitOutput("alive\r\n")
		return priv, id, c
	}

	t.Run("type, size, resize, pwd, env, exit", func(t *testing.T) {
		t.Parallel()
		env := srv.CreateEnvironment(t, "ssh-basic", "SSH", s.config(t, 0, map[string]any{"env": map[string]string{"FROM_CONFIG": "cfg"}}))
		dir := s.remoteDir(t, "dir with spaces")
		id := srv.CreateSession(t, map[string]any{
			"environment_id": env, "worktree_path": dir, "command": []string{"/bin/sh"}, "cols": 101, "rows": 37,
			"env": map[string]string{"PTYHOST_TEST_GREETING": "hej", "OTHER_GREETING": "hallo"},
		})
		c := srv.Attach(t, id)
		c.Send("stty size; pwd; echo \"[$PTYHOST_TEST_GREETING $OTHER_GREETING $FROM_CONFIG $TERM $COLORTERM $((6*7))]\"\r")
		c.WaitOutput("37 101\r\n")
		c.WaitOutput(dir + "\r\n")
		c.WaitOutput("[hej hallo cfg xterm-256color truecolor 42]")
		c.SendText(`{"type":"resize","cols":120,"rows":40}`)
		if m := c.WaitControl("resize"); m.Cols != 120 || m.Rows != 40 {
			t.Errorf("resize message %v", m)
		}
		c.Send("stty size\r")
		c.WaitOutput("40 120\r\n")
		c.Send("printf 'the end'; exit 7\r")
		m := c.WaitControl("exit")
		if m.Code != 7 || m.Reason != "" {
			t.Errorf("exit = %v, want code 7", m)
		}
		if !bytes.Contains(c.Out, []byte("the end")) {
			t.Error("output before the exit was lost")
		}
		if rec := srv.Session(t, id); rec["status"] != "TERMINATED" || rec["exit_code"] != 7.0 {
			t.Errorf("session = %v", rec)
		}
	})

	t.Run("killed by a signal", func(t *testing.T) {
		t.Parallel()
		env := srv.CreateEnvironment(t, "ssh-signal", "SSH", s.config(t, 0, nil))
		id := srv.CreateSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "read go; echo bye; kill -KILL $$"}})
		c := srv.Attach(t, id)
		c.Send("go\r")
		m := c.WaitControl("exit")
		if m.Code != 137 || m.Signal != "SIGKILL" || m.Reason != "" {
			t.Errorf("exit = %v, want 137 SIGKILL", m)
		}
		c.WaitOutput("bye")
		if rec := srv.Session(t, id); rec["status"] != "TERMINATED" || rec["exit_signal"] != "SIGKILL" {
			t.Errorf("session = %v", rec)
		}
	})

	t.Run("destroy kills the remote command", func(t *testing.T) {
		t.Parallel()
		env := srv.CreateEnvironment(t, "ssh-destroy", "SSH", s.config(t, 0, nil))
		id := srv.CreateSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "echo pid=$$; exec sleep 1000"}})
		c := srv.Attach(t, id)
		c.WaitOutput("pid=")
		var pid int
		fmt.Sscanf(string(c.Out[bytes.Index(c.Out, []byte("pid="))+4:]), "%d", &pid)
		if code, _ := srv.Request(t, "DELETE", "/api/v1/sessions/"+id, nil); code != 204 {
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
			env := srv.CreateEnvironment(t, fmt.Sprintf("ssh-hostkey-%d", i), "SSH", s.config(t, 0, tt.config))
			code, out := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": env, "command": []string{"true"}})
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
		env := srv.CreateEnvironment(t, "ssh-accept-new", "SSH", s.config(t, 0, map[string]any{"known_hosts": kh, "host_key_check": "accept-new"}))
		id := srv.CreateSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "echo accepted"}})
		srv.Attach(t, id).WaitOutput("accepted")
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
		env = srv.CreateEnvironment(t, "ssh-accepted-strict", "SSH", s.config(t, 0, map[string]any{"known_hosts": kh}))
		srv.Attach(t, srv.CreateSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "echo strict-ok"}})).WaitOutput("strict-ok")
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
			env := srv.CreateEnvironment(t, fmt.Sprintf("ssh-auth-%d", i), "SSH", s.config(t, 0, tt.config))
			code, out := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "echo logged-in; sleep 1000"}})
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
				srv.Attach(t, id).WaitOutput("logged-in")
				srv.Request(t, "DELETE", "/api/v1/sessions/"+id, nil)
			}
		}
		if strings.Contains(srv.Stderr(), os.Getenv(envPassword)) {
			t.Error("the server's log shows the password")
		}
	})

	t.Run("20 sessions over two connections at the default MaxSessions, linger, reconnect", func(t *testing.T) {
		t.Parallel()
		priv := s.startPrivate(t)
		if got := priv.setting(t, "maxsessions"); got != "10" {
			t.Fatalf("the private sshd's MaxSessions is %s, want OpenSSH's default 10", got)
		}
		env := srv.CreateEnvironment(t, "ssh-twenty", "SSH", s.config(t, priv.port, map[string]any{"linger": "1s"}))
		ids := make([]string, 20)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Go(func() {
				code, out := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": env,
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
			c := srv.Attach(t, id)
			c.WaitOutput(fmt.Sprintf("session-%d", i))
			c.Send("echo-me\r")
			c.WaitOutput("echo-me\r\necho-me")
		}
		// Ten sessions a connection, as many as the server allows.
		if n, a := established(t, priv.port), priv.accepted(); n != 2 || a != 2 {
			t.Errorf("%d TCP connections and %d logins for 20 sessions, want 2 and 2", n, a)
		}
		for _, id := range ids {
			srv.Request(t, "DELETE", "/api/v1/sessions/"+id, nil)
		}
		// Within the linger, a new session reuses the connection...
		id := srv.CreateSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "echo again; exec cat"}})
		srv.Attach(t, id).WaitOutput("again")
		if a := priv.accepted(); a != 2 {
			t.Errorf("%d logins after a re-create within the linger, want 2", a)
		}
		srv.Request(t, "DELETE", "/api/v1/sessions/"+id, nil)
		// ...and after it the connection is closed.
		if !waitFor(10*time.Second, func() bool { return established(t, priv.port) == 0 }) {
			t.Errorf("%d connections left after the linger", established(t, priv.port))
		}
		// The next session reconnects.
		id = srv.CreateSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh", "-c", "echo reconnected; exec cat"}})
		srv.Attach(t, id).WaitOutput("reconnected")
		if a := priv.accepted(); a != 3 {
			t.Errorf("%d logins, want 3", a)
		}
	})

	t.Run("sshd killed mid-session", func(t *testing.T) {
		t.Parallel()
		priv := s.startPrivate(t)
		env := srv.CreateEnvironment(t, "ssh-killed", "SSH", s.config(t, priv.port, nil))
		var terms []*e2etest.Term
		var ids []string
		for i := range 2 {
			id := srv.CreateSession(t, map[string]any{"environment_id": env, "command": []string{"/bin/sh"}})
			c := srv.Attach(t, id)
			c.Send(fmt.Sprintf("echo alive-%d\r", i))
			c.WaitOutput(fmt.Sprintf("alive-%d\r\n", i))
			terms, ids = append(terms, c), append(ids, id)
		}
		priv.signal(syscall.SIGKILL)
		want := fmt.Sprintf("ssh connection to 127.0.0.1:%d lost", priv.port)
		for i, c := range terms {
			m := c.WaitControl("exit")
			if m.Code != -1 || !contains(m.Reason, want) {
				t.Errorf("exit = %v, want code -1 and a reason with %q", m, want)
			}
			var rec map[string]any
			waitFor(5*time.Second, func() bool { rec = srv.Session(t, ids[i]); return rec["status"] == "ERROR" })
			if rec["status"] != "ERROR" || !contains(rec["status_reason"], want) {
				t.Errorf("session = %v, want ERROR with the reason", rec)
			}
		}
		// The host is down now: creating a session says so, at once. (Its
		// listening socket may outlive the killed process for a moment,
		// taking a connection and resetting it: wait until it is gone.)
		waitFor(5*time.Second, func() bool {
			conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", priv.port))
			if err == nil {
				conn.Close()
			}
			return err != nil
		})
		start := time.Now()
		code, out := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": env, "command": []string{"true"}})
		if code != 503 || !contains(out["error"], "connection refused") || time.Since(start) > 5*time.Second {
			t.Errorf("create with sshd down: %d %v after %v, want 503 'connection refused'", code, out, time.Since(start))
		}
	})

	t.Run("keepalive detects a dead connection", func(t *testing.T) {
		t.Parallel()
		priv, id, c := aliveShell(t, "ssh-keepalive", map[string]any{"keepalive_interval": "300ms", "keepalive_count": 2})
		// Freeze the server: the TCP connection stays up, nothing answers.
		priv.signal(syscall.SIGSTOP)
		start := time.Now()
		m := c.WaitControl("exit")
		if !contains(m.Reason, "keepalive unanswered") || m.Code != -1 {
			t.Errorf("exit = %v, want a keepalive reason", m)
		}
		// 2 unanswered at 300ms apart: about 900ms.
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("the dead connection was noticed after %v", d)
		}
		waitFor(5*time.Second, func() bool { return srv.Session(t, id)["status"] == "ERROR" })
		if rec := srv.Session(t, id); rec["status"] != "ERROR" || !contains(rec["status_reason"], "keepalive") {
			t.Errorf("session = %v", rec)
		}
		// A frozen host does not hang a create past connect_timeout.
		env := srv.CreateEnvironment(t, "ssh-frozen", "SSH", s.config(t, priv.port, map[string]any{"connect_timeout": "1s"}))
		start = time.Now()
		code, out := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": env, "command": []string{"true"}})
		if code != 503 || !contains(out["error"], "1s (connect_timeout)") || time.Since(start) > 4*time.Second {
			t.Errorf("create on a frozen host: %d %v after %v, want 503 within about 1s", code, out, time.Since(start))
		}
	})

	t.Run("a frozen host does not hold a destroy", func(t *testing.T) {
		t.Parallel()
		priv, id, _ := aliveShell(t, "ssh-frozen-destroy", map[string]any{"keepalive_interval": "0s"})
		// Gone silent, and no keepalive to find it dead: the destroy's
		// kill, then its close, each wait a bounded time for the channel
		// they open to signal the group (the server's kill wait, 10 s,
		// then 2 s), not for as long as the connection lasts.
		priv.signal(syscall.SIGSTOP)
		start := time.Now()
		if code, out := srv.Request(t, "DELETE", "/api/v1/sessions/"+id, nil); code != 204 {
			t.Fatalf("DELETE: %d %v", code, out)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("destroying a session of a frozen host took %v", d)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		env := srv.CreateEnvironment(t, "ssh-refused", "SSH", s.config(t, freePort(t), nil))
		code, out := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": env})
		if code != 503 || !contains(out["error"], "cannot reach") {
			t.Errorf("refused: %d %v, want 503", code, out)
		}
	})

	t.Run("bad session requests", func(t *testing.T) {
		t.Parallel()
		priv := s.startPrivate(t)
		env := srv.CreateEnvironment(t, "ssh-bad-requests", "SSH", s.config(t, priv.port, map[string]any{"linger": "300ms"}))
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
			code, out := srv.Request(t, "POST", "/api/v1/sessions", tt.body)
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
			code, out := srv.Request(t, "POST", "/api/v1/environments", map[string]any{"type": "SSH", "config": tt.config})
			if code != 400 || !contains(out["error"], tt.want) {
				t.Errorf("%s: %d %v, want 400 mentioning %q", tt.name, code, out, tt.want)
			}
			if contains(out, "hunter2") {
				t.Errorf("%s: the response shows the password", tt.name)
			}
		}
	})
}
