package main

// Integration tests through the real plugin binary (pluginhost.Load, a
// separate process over go-plugin) against the real sshd of sshd.sh.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/ptyhost/ptyhost/core/pluginhost"
	"github.com/ptyhost/ptyhost/internal/e2etest"
	"github.com/ptyhost/ptyhost/internal/testbin"
	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

func request(id string, cfg json.RawMessage, argv ...string) shared.SpawnRequest {
	return shared.SpawnRequest{
		SessionID:       id,
		EnvironmentID:   "test",
		EnvironmentType: EnvironmentType,
		Config:          cfg,
		Command:         argv,
		Size:            shared.Size{Cols: 80, Rows: 24},
	}
}

func TestConformance(t *testing.T) {
	s := testSSHD(t)
	sharedtest.Run(t, loadSSH(t), sharedtest.Config{
		Config:    s.config(t, 0, map[string]any{"env": map[string]string{"PTYHOST_SHAREDTEST": "1"}}),
		BadConfig: json.RawMessage(`{"host": "127.0.0.1", "hostname": "typo"}`),
		Dir:       s.remoteDir(t, "conformance"),
	})
}

// The same cases in-process, without the gRPC glue (but for the id
// bookkeeping, which is the glue's); the leak check then also covers the
// pool's goroutines.
func TestConformanceInProcess(t *testing.T) {
	s := testSSHD(t)
	env := New(nil)
	t.Cleanup(env.Close)
	sharedtest.Run(t, env, sharedtest.Config{
		Config: s.config(t, 0, map[string]any{"env": map[string]string{"PTYHOST_SHAREDTEST": "1"}}),
		Dir:    s.remoteDir(t, "conformance"),
		Skip:   map[string]string{"duplicate_id": "session ids are the gRPC server's business"},
	})
}

func TestSpawnErrors(t *testing.T) {
	s := testSSHD(t)
	env := loadSSH(t)
	good := s.config(t, 0, nil)
	file := filepath.Join(s.remoteDir(t, "d"), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(*shared.SpawnRequest)
		want    error
		message string
	}{
		{"missing dir", func(r *shared.SpawnRequest) { r.Dir = "/nonexistent/dir with space" }, shared.ErrInvalidArgument, `can't cd to /nonexistent/dir with space`},
		{"dir is a file", func(r *shared.SpawnRequest) { r.Dir = file }, shared.ErrInvalidArgument, "working directory"},
		{"relative dir", func(r *shared.SpawnRequest) { r.Dir = "tmp" }, shared.ErrInvalidArgument, "not an absolute path"},
		{"missing command", func(r *shared.SpawnRequest) { r.Command = []string{"/no/such/command"} }, shared.ErrInvalidArgument, `command "/no/such/command" not found`},
		{"missing shell", func(r *shared.SpawnRequest) {
			r.Command = nil
			r.Config = s.config(t, 0, map[string]any{"shell": "/no/such/shell"})
		}, shared.ErrInvalidArgument, `"/no/such/shell" not found`},
		{"bad env name", func(r *shared.SpawnRequest) { r.Env = map[string]string{"A.B": "c"} }, shared.ErrInvalidArgument, "variable name"},
		{"unknown config field", func(r *shared.SpawnRequest) { r.Config = json.RawMessage(`{"host": "h", "hostname": "x"}`) }, shared.ErrInvalidConfig, `unknown field "hostname"`},
		{"wrong type", func(r *shared.SpawnRequest) { r.EnvironmentType = "HOST" }, shared.ErrInvalidArgument, `"HOST"`},
		{"refused port", func(r *shared.SpawnRequest) { r.Config = s.config(t, freePort(t), nil) }, shared.ErrUnavailable, "connection refused"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			req := request(fmt.Sprintf("spawn-error-%d", i), good, "/bin/true")
			tt.edit(&req)
			p, err := env.Spawn(ctx, req)
			if err == nil {
				p.Close()
				t.Fatal("Spawn succeeded")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Spawn: %q, want an error wrapping %q that mentions %q", err, tt.want, tt.message)
			}
		})
	}
}

// Session env: names sshd accepts (AcceptEnv PTYHOST_TEST_*) go by env
// request, the others by the export fallback; both arrive intact, and
// values cannot inject.
func TestSessionEnv(t *testing.T) {
	s := testSSHD(t)
	ctx := testContext(t)
	env := loadSSH(t)
	cfg := s.config(t, 0, map[string]any{"env": map[string]string{"FROM_CONFIG": "c'fg", "PTYHOST_TEST_OVER": "config"}})
	req := request("env", cfg, "/bin/sh", "-c", `printf '[%s|%s|%s|%s|%s]\n' "$TERM" "$FROM_CONFIG" "$PTYHOST_TEST_OVER" "$PTYHOST_TEST_ACCEPTED" "$REFUSED"`)
	req.Env = map[string]string{"PTYHOST_TEST_OVER": "session", "PTYHOST_TEST_ACCEPTED": "a b", "REFUSED": "$(touch /tmp/ptyhost-ssh-canary); x"}
	for i := range 2 { // the second time, the refusals are remembered
		req.SessionID = fmt.Sprintf("env-%d", i)
		p, err := env.Spawn(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		term := sharedtest.NewTerm(t, p)
		term.Expect(ctx, "[xterm-256color|c'fg|session|a b|$(touch /tmp/ptyhost-ssh-canary); x]")
		term.Wait(ctx)
	}
	if _, err := os.Stat("/tmp/ptyhost-ssh-canary"); err == nil {
		os.Remove("/tmp/ptyhost-ssh-canary")
		t.Error("an env value ran a command")
	}
}

// Working directories and arguments with spaces, quotes and shell syntax
// reach the remote command as they are.
func TestHostileDirAndArgs(t *testing.T) {
	s := testSSHD(t)
	ctx := testContext(t)
	env := loadSSH(t)
	dir := s.remoteDir(t, `it's a "dir"; $(touch CANARY) `+"`x`")
	req := request("hostile", s.config(t, 0, nil), append([]string{"/bin/sh", "-c", `printf '<%s>' "$PWD" "$@"; echo`, "sh"}, hostile...)...)
	req.Dir = dir
	p, err := env.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	out := string(term.ReadAll(ctx))
	want := "<" + dir + ">"
	for _, a := range hostile {
		// The terminal turns \n into \r\n.
		want += "<" + strings.ReplaceAll(a, "\n", "\r\n") + ">"
	}
	if !strings.Contains(out, want) {
		t.Errorf("output %q\nwant %q", out, want)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "CANARY")); err == nil {
		t.Error("the directory name ran a command")
	}
}

// With no command, the session runs the user's login shell as a login
// shell, in the working directory.
func TestLoginShell(t *testing.T) {
	s := testSSHD(t)
	ctx := testContext(t)
	req := request("shell", s.config(t, 0, nil))
	req.Dir = s.remoteDir(t, "home away")
	p, err := loadSSH(t).Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Write("printf '[%s|%s]\\n' \"$PWD\" \"$(whoami)\"; exit 3\r")
	term.Expect(ctx, "["+req.Dir+"|"+s.user+"]")
	if st := term.Wait(ctx); st.Code != 3 {
		t.Errorf("exit status %+v, want 3", st)
	}
}

func TestHealth(t *testing.T) {
	s := testSSHD(t)
	ctx := testContext(t)
	h, ok := loadSSH(t).(shared.HealthChecker)
	if !ok {
		t.Fatal("the plugin client does not implement shared.HealthChecker")
	}
	wrongKey := filepath.Join(t.TempDir(), "wrong")
	writeKey(t, wrongKey, "")
	hang := hangingServer(t)
	tests := []struct {
		name    string
		config  json.RawMessage
		want    error // nil: any error
		message string
	}{
		{"unreachable", s.config(t, freePort(t), nil), shared.ErrUnavailable, "connection refused"},
		{"no answer", s.config(t, hang, map[string]any{"connect_timeout": "500ms"}), shared.ErrUnavailable, "did not answer within 500ms"},
		{"wrong key", s.config(t, 0, map[string]any{"identity_file": wrongKey}), nil, "authentication failed for " + s.user + "@"},
		{"wrong password", s.config(t, 0, map[string]any{"identity_file": nil, "password_env": envWrongPassword}), nil, "password from $" + envWrongPassword},
		{"unknown host key", s.config(t, 0, map[string]any{"known_hosts": filepath.Join(t.TempDir(), "empty")}), nil, "is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := h.Health(ctx, EnvironmentType, tt.config)
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Health = %v, want an error (wrapping %v) mentioning %q", err, tt.want, tt.message)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("Health took %v", time.Since(start))
			}
		})
	}
	for _, cfg := range []json.RawMessage{
		s.config(t, 0, nil),
		s.config(t, 0, map[string]any{"identity_file": nil, "password_env": envPassword}),
		s.config(t, 0, map[string]any{"identity_file": s.keyEnc, "passphrase_env": envPassphrase}),
		s.config(t, 0, map[string]any{"jump": map[string]any{"host": s.host, "port": s.port, "user": s.user}}),
	} {
		if err := h.Health(ctx, EnvironmentType, cfg); err != nil {
			t.Errorf("Health(%s) = %v", cfg, err)
		}
	}
}

// A session through a jump host (the test sshd, to itself) works.
func TestJumpHost(t *testing.T) {
	s := testSSHD(t)
	ctx := testContext(t)
	cfg := s.config(t, 0, map[string]any{"jump": fmt.Sprintf("%s@%s:%d", s.user, s.host, s.port)})
	p, err := loadSSH(t).Spawn(ctx, request("jump", cfg, "/bin/sh", "-c", `echo "via:$SSH_CONNECTION"`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "via:127.0.0.1")
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v", st)
	}
}

// hangingServer listens and accepts, but never speaks: a host that does
// not answer. It returns the port.
func hangingServer(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// The plugin's log names the credentials' files and variables, never a
// secret, and warns when host key checking is off.
func TestLogs(t *testing.T) {
	s := testSSHD(t)
	ctx := testContext(t)
	t.Setenv(shared.LogLevelEnv, "debug")
	var logs e2etest.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	plugins, err := pluginhost.Load(ctx, pluginhost.Options{Dir: testbin.PluginDir(t, "ssh"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plugins.Close)
	waitStarted(t, ctx, plugins)
	env, err := plugins.Environment(EnvironmentType)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.config(t, 0, map[string]any{"identity_file": s.keyEnc, "passphrase_env": envPassphrase, "password_env": envPassword,
		"known_hosts": filepath.Join(t.TempDir(), "none"), "host_key_check": "off"})
	p, err := env.Spawn(ctx, request("logs", cfg, "/bin/sh", "-c", "echo in"))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "in")
	term.Wait(ctx)
	term.Close()
	plugins.Close() // flushes the plugin's log
	out := logs.String()
	for _, want := range []string{"host key checking is off", "identity_file " + s.keyEnc, "password from $" + envPassword} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not mention %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{os.Getenv(envPassword), os.Getenv(envPassphrase)} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows a secret:\n%s", out)
		}
	}
}

// With agent: true, the keys come from the agent at SSH_AUTH_SOCK (here
// one served in-process), read by the plugin at connect time.
func TestAgentAuth(t *testing.T) {
	s := testSSHD(t)
	ctx := testContext(t)
	pem, err := os.ReadFile(s.key)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = agent.ServeAgent(keyring, c)
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	t.Setenv(agentSockEnv, sock)
	cfg := s.config(t, 0, map[string]any{"identity_file": nil, "agent": true})
	p, err := loadSSH(t).Spawn(ctx, request("agent", cfg, "/bin/sh", "-c", "echo via-agent"))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "via-agent")
	term.Wait(ctx)
}

// groupChildRe matches the pid a session's background child reports.
var groupChildRe = regexp.MustCompile(`child=([0-9]+)\.`)

// Close of a running session, and a Kill whose ctx deadline is near (as
// when the plugin stops), end the remote process group too: a background
// child that ignores SIGHUP is gone within half the deadline's time (not
// after the full killGrace), or at once after Close. The test sshd runs on
// this machine, so /proc shows the child.
func TestKillCloseEndGroup(t *testing.T) {
	s := testSSHD(t)
	env := New(nil)
	t.Cleanup(env.Close)
	const child = `sh -c 'trap "" HUP; printf "child=%s.\n" $$; exec sleep 1000' & wait`
	// within: how soon the child must be gone; well under killGrace.
	for how, within := range map[string]time.Duration{"close": time.Second, "kill with a deadline": 1500 * time.Millisecond} {
		t.Run(how, func(t *testing.T) {
			ctx := testContext(t)
			p, err := env.Spawn(ctx, request("group-"+strings.ReplaceAll(how, " ", "-"), s.config(t, 0, nil), "/bin/sh", "-c", child))
			if err != nil {
				t.Fatal(err)
			}
			term := sharedtest.NewTerm(t, p)
			pid := term.Match(ctx, groupChildRe)[1]
			start := time.Now()
			if how == "close" {
				if err := p.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			} else {
				kctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				if err := p.Kill(kctx); err != nil {
					t.Fatalf("Kill: %v", err)
				}
			}
			for processRuns(pid) {
				if time.Since(start) > within {
					t.Fatalf("background child %s (ignoring SIGHUP) still runs %v after %s", pid, within, how)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// processRuns reports whether the process pid exists and is not a zombie.
func processRuns(pid string) bool {
	st, err := os.ReadFile("/proc/" + pid + "/stat")
	return err == nil && !strings.Contains(string(st), ") Z ")
}
