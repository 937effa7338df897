package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func request(socket, id string, argv ...string) shared.SpawnRequest {
	return shared.SpawnRequest{
		SessionID:       id,
		EnvironmentType: EnvironmentType,
		Config:          json.RawMessage(fmt.Sprintf(`{"socket": %q}`, socket)),
		Command:         argv,
		Size:            shared.Size{Cols: 80, Rows: 24},
	}
}

// tmuxCmd runs tmux on socket and returns its trimmed output.
func tmuxCmd(socket string, args ...string) (string, error) {
	out, err := exec.Command("tmux", append([]string{"-L", socket}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		config string
		want   config
		err    string // "" for none
	}{
		{``, config{Socket: "ptyhost"}, ""},
		{`null`, config{Socket: "ptyhost"}, ""},
		{`{}`, config{Socket: "ptyhost"}, ""},
		{`{"socket": "work", "keep": true, "shell": "/bin/sh", "env": {"A": "b"}}`,
			config{Socket: "work", Keep: true, Shell: "/bin/sh", Env: map[string]string{"A": "b"}}, ""},
		{`{"sockt": "x"}`, config{}, `unknown field "sockt"`},
		{`{"socket": "../x"}`, config{}, `socket "../x"`},
		{`{"socket": "a/b"}`, config{}, `socket "a/b"`},
		{`{"keep": "yes"}`, config{}, "cannot unmarshal"},
		{`{"shell": "/no/such/shell"}`, config{}, "/no/such/shell"},
		{`{"env": {"A=B": "c"}}`, config{}, "bad variable name"},
		{`{} {}`, config{}, "trailing data"},
	}
	for _, tt := range tests {
		t.Run(tt.config, func(t *testing.T) {
			got, err := parseConfig(json.RawMessage(tt.config))
			if tt.err != "" {
				if !errors.Is(err, shared.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("parseConfig: %v; want ErrInvalidConfig mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil || got.Socket != tt.want.Socket || got.Keep != tt.want.Keep ||
				got.Shell != tt.want.Shell || fmt.Sprint(got.Env) != fmt.Sprint(tt.want.Env) {
				t.Errorf("parseConfig = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestSessionName(t *testing.T) {
	tests := []struct {
		id, want string
		ok       bool
	}{
		{"abc-1_2", "abc-1_2", true},
		{"a.b:c", "a_b_c", true},
		{"", "", false},
		{"a b", "", false},
		{"a;b", "", false},
		{strings.Repeat("x", 129), "", false},
	}
	for _, tt := range tests {
		got, err := sessionName(tt.id)
		if tt.ok && (err != nil || got != tt.want) || !tt.ok && !errors.Is(err, shared.ErrInvalidArgument) {
			t.Errorf("sessionName(%q) = %q, %v; want %q (ok %v)", tt.id, got, err, tt.want, tt.ok)
		}
	}
}

func TestTmuxVersion(t *testing.T) {
	tests := []struct {
		out          string
		major, minor int
		ok           bool
	}{
		{"tmux 3.3a\n", 3, 3, true},
		{"tmux 3.0", 3, 0, true},
		{"tmux next-3.4", 3, 4, true},
		{"tmux master", 0, 0, false},
	}
	for _, tt := range tests {
		major, minor, ok := tmuxVersion(tt.out)
		if major != tt.major || minor != tt.minor || ok != tt.ok {
			t.Errorf("tmuxVersion(%q) = %d, %d, %v; want %d, %d, %v", tt.out, major, minor, ok, tt.major, tt.minor, tt.ok)
		}
	}
}

func TestSpawnErrors(t *testing.T) {
	socket := newSocket(t)
	env := sharedtest.Serve(t, New(nil))
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(*shared.SpawnRequest)
		want    error
		message string
	}{
		{"missing dir", func(r *shared.SpawnRequest) { r.Dir = "/nonexistent/dir" }, shared.ErrInvalidArgument, `"/nonexistent/dir" does not exist`},
		{"dir is a file", func(r *shared.SpawnRequest) { r.Dir = file }, shared.ErrInvalidArgument, "is not a directory"},
		{"relative dir", func(r *shared.SpawnRequest) { r.Dir = "tmp" }, shared.ErrInvalidArgument, "not an absolute path"},
		{"unknown config field", func(r *shared.SpawnRequest) { r.Config = json.RawMessage(`{"sockt": "x"}`) }, shared.ErrInvalidConfig, `unknown field "sockt"`},
		{"bad env name", func(r *shared.SpawnRequest) { r.Env = map[string]string{"A=B": "c"} }, shared.ErrInvalidArgument, "bad variable name"},
		{"missing command", func(r *shared.SpawnRequest) { r.Command = []string{"/no/such/command"} }, shared.ErrInvalidArgument, "/no/such/command"},
		{"wrong type", func(r *shared.SpawnRequest) { r.EnvironmentType = "HOST" }, shared.ErrInvalidArgument, `"HOST"`},
		{"bad session id", func(r *shared.SpawnRequest) { r.SessionID = "a b" }, shared.ErrInvalidArgument, `session id "a b"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(socket, fmt.Sprintf("spawn-error-%d", i), "/bin/true")
			tt.edit(&req)
			p, err := env.Spawn(testContext(t), req)
			if err == nil {
				p.Close()
				t.Fatal("Spawn succeeded")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Spawn: %q; want an error wrapping %q that mentions %q", err, tt.want, tt.message)
			}
		})
	}
	// Nothing was left behind.
	if out, err := tmuxCmd(socket, "list-sessions", "-F", "#{session_name}"); err == nil && out != "" {
		t.Errorf("tmux sessions left by failed spawns: %s", out)
	}
}

// Arguments reach the command as they are, whatever tmux would make of
// them: a trailing ";" (a command separator for tmux), "#{...}" (a
// format), and a single argument (which tmux would run through a shell).
func TestArgumentsReachTheCommand(t *testing.T) {
	socket := newSocket(t)
	env := sharedtest.Serve(t, New(nil))
	ctx := testContext(t)
	p, err := env.Spawn(ctx, request(socket, "args",
		"/bin/sh", "-c", `printf '<%s>' "$@"; printf '\n'; sleep 0.1`, "sh", "a;", `b\;`, "#{pane_id}", "$HOME", "two words"))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, `<a;><b\;><#{pane_id}><$HOME><two words>`)
	term.Wait(ctx)

	dir := filepath.Join(t.TempDir(), "a dir; with #{x}")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "run me")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf 'pwd:%s\\n' \"$PWD\"\nsleep 0.1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	req := request(socket, "single", script)
	req.Dir = dir
	p, err = env.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	term = sharedtest.NewTerm(t, p)
	term.Expect(ctx, "pwd:"+dir)
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v", st)
	}
}

// The session's environment: the config's and the session's variables,
// and none of the plugin's own (the plugin binary, started as the server
// starts it, has the go-plugin cookie in its environment).
func TestChildEnvironment(t *testing.T) {
	socket := newSocket(t)
	env := sharedtest.Launch(t, pluginBinary(t))
	ctx := testContext(t)
	req := request(socket, "env", "/bin/sh", "-c",
		`printf '[%s|%s|%s|%s]\n' "$FROM_CONFIG" "$FROM_SESSION" "${PTYHOST_PLUGIN-unset}" "${TMUX:+in-tmux}"; sleep 0.1`)
	req.Config = json.RawMessage(fmt.Sprintf(`{"socket": %q, "env": {"FROM_CONFIG": "c", "FROM_SESSION": "overridden"}}`, socket))
	req.Env = map[string]string{"FROM_SESSION": "s"}
	p, err := env.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	sharedtest.NewTerm(t, p).Expect(ctx, "[c|s|unset|in-tmux]")
}

// The variables of SpawnRequest.UnsetEnv (the session's unset_env, the
// server's --never-env) are not the session's, whether the plugin — and so
// the tmux server — inherited them or the config or the session sets them;
// a single-argument command still runs as a program.
func TestUnsetEnv(t *testing.T) {
	t.Setenv("CLAUDECODE", "1")
	socket := newSocket(t)
	env := sharedtest.Serve(t, New(nil))
	ctx := testContext(t)
	script := filepath.Join(t.TempDir(), "print env")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"+
		`printf '[%s|%s|%s|%s]\n' "${CLAUDECODE-unset}" "${SECRETX-unset}" "${SESSIONX-unset}" "${KEPT-unset}"`+"\nsleep 0.1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	req := request(socket, "unset", script)
	req.Config = json.RawMessage(fmt.Sprintf(`{"socket": %q, "env": {"SECRETX": "cfg", "KEPT": "cfg"}}`, socket))
	req.Env = map[string]string{"SESSIONX": "req"}
	req.UnsetEnv = []string{"CLAUDECODE", "SECRETX", "SESSIONX", "-g"} // -g: a name, not a flag of tmux's
	p, err := env.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "[unset|unset|unset|cfg]")

	// A window opened in the session later (C-b c) has none of them either.
	out := filepath.Join(t.TempDir(), "window")
	name, err := sessionName(req.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	window := exec.Command("tmux", "-L", socket, "new-window", "-t", target(name), "--",
		"/bin/sh", "-c", `printf '[%s|%s|%s|%s]' "${CLAUDECODE-unset}" "${SECRETX-unset}" "${SESSIONX-unset}" "${KEPT-unset}" > "$0"`, out)
	if b, err := window.CombinedOutput(); err != nil {
		t.Fatalf("new-window: %v: %s", err, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(out)
		if string(b) == "[unset|unset|unset|cfg]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a new window's environment: %q, want [unset|unset|unset|cfg]", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v", st)
	}
}

// With no command, the session runs the configured shell, as argv [shell].
func TestDefaultShell(t *testing.T) {
	socket := newSocket(t)
	ctx := testContext(t)
	req := request(socket, "shell")
	req.Config = json.RawMessage(fmt.Sprintf(`{"socket": %q, "shell": "/bin/sh"}`, socket))
	p, err := sharedtest.Serve(t, New(nil)).Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Write("printf 'shell:%s:\\n' \"$0\"; sleep 0.1; exit 3\r")
	term.Expect(ctx, "shell:/bin/sh:")
	if st := term.Wait(ctx); st.Code != 3 {
		t.Errorf("exit status %+v, want 3", st)
	}
}

// With keep, Kill and Close only detach: the tmux session lives on, handed
// over to tmux (it ends with its command), and a new session cannot take
// its id.
func TestKeep(t *testing.T) {
	socket := newSocket(t)
	env := sharedtest.Serve(t, New(nil))
	keep := json.RawMessage(fmt.Sprintf(`{"socket": %q, "keep": true}`, socket))
	for _, how := range []string{"kill", "close"} {
		t.Run(how, func(t *testing.T) {
			ctx := testContext(t)
			id := "keep-" + how
			req := request(socket, id, "/bin/sh", "-c", "printf 'ready\\n'; read x; printf 'got:%s\\n' \"$x\"; exit 4")
			req.Config = keep
			p, err := env.Spawn(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			term := sharedtest.NewTerm(t, p)
			term.Expect(ctx, "ready")
			if how == "kill" {
				if err := p.Kill(ctx); err != nil {
					t.Fatal(err)
				}
				st := term.Wait(ctx)
				if !strings.Contains(st.Reason, "lives on") || !strings.Contains(st.Reason, "tmux -L "+socket+" attach -t ="+id+":") {
					t.Errorf("exit status %+v; want a reason that says how to attach", st)
				}
			}
			if err := term.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := tmuxCmd(socket, "has-session", "-t", "="+id+":"); err != nil {
				t.Fatalf("the tmux session did not outlive the ptyhost session: %v", err)
			}
			if out, _ := tmuxCmd(socket, "show-options", "-w", "-v", "-t", "="+id+":", "remain-on-exit"); out == "on" {
				t.Errorf("remain-on-exit of the kept session is still on")
			}

			// The id is taken while the tmux session lives.
			_, err = env.Spawn(ctx, req)
			if !errors.Is(err, shared.ErrAlreadyExists) || !strings.Contains(err.Error(), "tmux -L "+socket+" attach") {
				t.Errorf("Spawn of a kept session's id: %v; want ErrAlreadyExists saying how to attach", err)
			}

			// Typed into it by hand, its command ends, and the session too.
			if out, err := tmuxCmd(socket, "send-keys", "-t", "="+id+":", "bye", "Enter"); err != nil {
				t.Fatalf("send-keys: %v %s", err, out)
			}
			waitGone(ctx, t, socket, id)
		})
	}
}

// waitGone waits until the tmux session id no longer exists.
func waitGone(ctx context.Context, t *testing.T, socket, id string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := tmuxCmd(socket, "has-session", "-t", "="+id+":"); err != nil {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("tmux session %s still exists", id)
		}
	}
}

// Without keep, Close removes the tmux session.
func TestCloseKillsTheSession(t *testing.T) {
	socket := newSocket(t)
	ctx := testContext(t)
	p, err := sharedtest.Serve(t, New(nil)).Spawn(ctx, request(socket, "closed", "/bin/sh", "-c", "printf 'ready\\n'; sleep 1000"))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "ready")
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := tmuxCmd(socket, "has-session", "-t", "=closed:"); err == nil {
		t.Error("the tmux session outlived Close")
	}
}

// A session whose tmux session is killed by hand ends with a reason.
func TestKilledOutsidePtyhost(t *testing.T) {
	socket := newSocket(t)
	ctx := testContext(t)
	p, err := sharedtest.Serve(t, New(nil)).Spawn(ctx, request(socket, "outside", "/bin/sh", "-c", "printf 'ready\\n'; sleep 1000"))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "ready")
	if out, err := tmuxCmd(socket, "kill-session", "-t", "=outside:"); err != nil {
		t.Fatalf("kill-session: %v %s", err, out)
	}
	if st := term.Wait(ctx); st.Signal != "SIGHUP" || !strings.Contains(st.Reason, "outside ptyhost") {
		t.Errorf("exit status %+v; want SIGHUP with a reason", st)
	}
}

func TestSignalNumber(t *testing.T) {
	for in, want := range map[string]int{"": 0, "15": 15, "TERM": 15, "kill": 9, "SIGHUP": 1, "NOPE": 0} {
		if got := signalNumber(in); got != want {
			t.Errorf("signalNumber(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestHealth(t *testing.T) {
	needTmux(t)
	ctx := testContext(t)
	env := New(nil)
	if err := env.Health(ctx, EnvironmentType, nil); err != nil {
		t.Errorf("Health: %v", err)
	}
	if err := env.Health(ctx, EnvironmentType, json.RawMessage(`{"sockt": "x"}`)); !errors.Is(err, shared.ErrInvalidConfig) {
		t.Errorf("Health with a bad config: %v; want ErrInvalidConfig", err)
	}
	t.Setenv("PATH", t.TempDir())
	if err := env.Health(ctx, EnvironmentType, nil); !errors.Is(err, shared.ErrUnavailable) {
		t.Errorf("Health without tmux: %v; want ErrUnavailable", err)
	}
}

// groupAlive counts a process group's living members, not its zombies.
func TestGroupAlive(t *testing.T) {
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	if !groupAlive(pgid) {
		t.Error("a running group is not alive")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Not reaped yet: a zombie, which does not count.
	deadline := time.Now().Add(5 * time.Second)
	for groupAlive(pgid) {
		if time.Now().After(deadline) {
			t.Fatal("a group of one killed, unreaped process is still alive")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = cmd.Wait()
	if groupAlive(pgid) {
		t.Error("an empty group is alive")
	}
}
