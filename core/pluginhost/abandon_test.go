package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
)

// Tests of plugin starts the supervisor gives up on: whatever the way,
// no process of the plugin's (nor the helpers in its process group) runs
// afterwards, every one is reaped, and the socket directory holds nothing
// of it.

// writeTracedPlugin makes the plugin name in dir a shell script that, at
// every launch, appends its pid to state/name.pids, starts a helper (sleep)
// in its process group and appends the helper's pid to state/name.helpers,
// and then execs target with the script's arguments.
func writeTracedPlugin(t *testing.T, dir, state, name, target string) {
	t.Helper()
	writeExecutable(t, dir, ExecutablePrefix+name, fmt.Sprintf("#!/bin/sh\necho $$ >> %s\n%s 600 &\necho $! >> %s\nexec %s \"$@\"\n",
		filepath.Join(state, name+".pids"), sleepPath(t), filepath.Join(state, name+".helpers"), target), 0o755)
}

// tracedPIDs returns the pids a traced plugin's launches wrote to
// state/name.kind (pids or helpers), in order.
func tracedPIDs(t *testing.T, state, name, kind string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(state, name+"."+kind))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s.%s: %v", name, kind, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// reaped reports whether pid is gone altogether: not running, and not a
// zombie waiting to be reaped either.
func reaped(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// waitReaped waits until every plugin process a traced plugin launched has
// been reaped, and every helper has died (a helper, which init adopts, is
// reaped by init, not by this process), failing after d.
func waitReaped(ctx context.Context, t *testing.T, state, name string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	check := func(kind string, gone func(int) bool) {
		for _, pid := range tracedPIDs(t, state, name, kind) {
			for !gone(pid) {
				select {
				case <-ctx.Done():
					_, st := procStat(pid)
					t.Fatalf("plugin %s: %s %d still there after %v (state %q)", name, strings.TrimSuffix(kind, "s"), pid, d, st)
				case <-time.After(5 * time.Millisecond): // polling: there is nothing to wait on
				}
			}
		}
	}
	check("pids", reaped)
	check("helpers", func(pid int) bool { return !alive(pid) })
}

// socketDirLeftovers lists what dir holds besides its lock file.
func socketDirLeftovers(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, e := range entries {
		if e.Name() != socketLockName {
			left = append(left, e.Name())
		}
	}
	return left
}

// Every way a first start can be given up on: the plugin is failed or
// refused, its process and its helper are gone and reaped, and neither its
// socket nor go-plugin's directory is left in the socket directory, while
// the Plugins runs (a server's socket directory lives as long as it does)
// and after Close.
func TestAbandonedStartLeavesNothing(t *testing.T) {
	fake := fakePluginBin(t)
	tests := []struct {
		name     string
		target   string // what the traced script execs
		script   string // the plugin's executable, instead of the traced script
		args     []string
		sha256   string
		timeout  time.Duration
		state    core.PluginState
		reason   string
		noLaunch bool // the script never runs
	}{
		{name: "no handshake", target: sleepPath(t), args: []string{"600"}, timeout: 3 * time.Second, // time for the script to run under load
			state: core.PluginFailed, reason: "within the start timeout"},
		{name: "protocol version", target: fake, args: []string{"-protocols", "7"},
			state: core.PluginRefused, reason: "protocol version 7"},
		{name: "info fails", target: fake, args: []string{"-info", "fail"},
			state: core.PluginFailed, reason: "Info fails"},
		{name: "info hangs", target: fake, args: []string{"-info", "hang"}, timeout: 3 * time.Second,
			state: core.PluginFailed, reason: "within the start timeout"},
		{name: "exec fails", target: "/nonexistent/plugin",
			state: core.PluginFailed, reason: "did not start"},
		{name: "interpreter missing", script: "#!/nonexistent/sh\n",
			state: core.PluginFailed, reason: "did not start", noLaunch: true},
		{name: "pin mismatch", target: fake, sha256: strings.Repeat("0", 64),
			state: core.PluginRefused, reason: "sha256 mismatch", noLaunch: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := pluginsContext(t)
			dir, state, sockDir := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "run")
			if tt.script != "" {
				writeExecutable(t, dir, ExecutablePrefix+"p", tt.script, 0o755)
			} else {
				writeTracedPlugin(t, dir, state, "p", tt.target)
			}
			opts := Options{Dir: dir, SocketDir: sockDir, StartTimeout: tt.timeout,
				Plugins: []Config{{Name: "p", Args: tt.args, SHA256: tt.sha256}}}
			p, err := loadPlugins(ctx, t, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			st, _ := p.Plugin("p")
			if st.State != tt.state || !strings.Contains(st.Reason, tt.reason) {
				t.Fatalf("plugin p: %s %q, want %s saying %q", st.State, st.Reason, tt.state, tt.reason)
			}
			if n := len(tracedPIDs(t, state, "p", "pids")); n == 0 && !tt.noLaunch && tt.target != "/nonexistent/plugin" {
				t.Fatal("the plugin never ran")
			}
			checkNothingLeft(ctx, t, p, state, "p", sockDir, "while the plugins run")
		})
	}
}

// A start under way when Close is called, before the handshake or during
// the Info call, is given up on: Close returns soon, with the process and
// its helper gone and reaped, and nothing of the plugin's in the socket
// directory.
func TestCloseDuringStartLeavesNothing(t *testing.T) {
	tests := []struct {
		name   string
		target func(t *testing.T) string
		args   []string
	}{
		{"before the handshake", sleepPath, []string{"600"}},
		{"during Info", fakePluginBin, []string{"-info", "hang"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := pluginsContext(t)
			dir, state, sockDir := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "run")
			writeTracedPlugin(t, dir, state, "p", tt.target(t))
			logs := newLogRecords()
			p, err := Load(ctx, Options{Dir: dir, SocketDir: sockDir, StartTimeout: time.Minute, Logger: slog.New(logs),
				Plugins: []Config{{Name: "p", Args: tt.args}}})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			readPID(ctx, t, filepath.Join(state, "p.helpers"))
			if tt.args[0] == "-info" {
				// The handshake is done, the socket made: Info is next.
				logs.wait(ctx, t, `msg="using plugin"`)
			}
			within(t, 5*time.Second, "Close", p.Close)
			if st, _ := p.Plugin("p"); st.State != core.PluginStopped {
				t.Errorf("after Close: %+v, want stopped", st)
			}
			checkNothingLeft(ctx, t, p, state, "p", sockDir, "after Close")
		})
	}
}

// A restart on request under way when Close is called: the new process is
// given up on and, with the one it replaced, gone and reaped.
func TestRestartRacingCloseLeavesNothing(t *testing.T) {
	ctx := pluginsContext(t)
	dir, state, sockDir := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "run")
	// Slow to start, so that Close comes while the restart starts it.
	slow := filepath.Join(state, "slow")
	writeExecutable(t, state, "slow", fmt.Sprintf("#!/bin/sh\n%s 0.5\nexec %s \"$@\"\n", sleepPath(t), fakePluginBin(t)), 0o755)
	writeTracedPlugin(t, dir, state, "p", slow)
	p, err := loadPlugins(ctx, t, Options{Dir: dir, SocketDir: sockDir, Plugins: []Config{{Name: "p"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waitPlugin(ctx, t, p, "p", "running", running)
	restarted := make(chan error, 1)
	go func() {
		_, err := p.Restart(ctx, "p")
		restarted <- err
	}()
	waitPlugin(ctx, t, p, "p", "a restart", func(st core.PluginStatus) bool {
		return st.State == core.PluginStarting && st.Restarts == 1
	})
	for len(tracedPIDs(t, state, "p", "helpers")) < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("the restart launched no process")
		case <-time.After(5 * time.Millisecond): // a file a script writes: nothing to wait on
		}
	}
	within(t, 5*time.Second, "Close", p.Close)
	if err := <-restarted; err != nil {
		t.Logf("Restart: %v", err)
	}
	checkNothingLeft(ctx, t, p, state, "p", sockDir, "after Close")
}

// A plugin that crashes and then fails every start after it, until the
// circuit opens: every process it ran is gone and reaped, and no socket of
// theirs is left, while the plugin is failed and after Close.
func TestCircuitOpenLeavesNothing(t *testing.T) {
	ctx := pluginsContext(t)
	dir, state, sockDir := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "run")
	writeServesOnce(t, dir, state, "p")
	p, err := loadPlugins(ctx, t, Options{Dir: dir, SocketDir: sockDir, Plugins: []Config{{Name: "p"}},
		RestartBackoff: time.Millisecond, MaxRestartBackoff: 5 * time.Millisecond, CrashLimit: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st := waitPlugin(ctx, t, p, "p", "running", running)
	killPlugin(t, st.PID)
	st = waitPlugin(ctx, t, p, "p", "the circuit to open", func(st core.PluginStatus) bool {
		return st.State == core.PluginFailed && strings.Contains(st.Reason, "circuit open")
	})
	if st.Restarts != 3 {
		t.Errorf("plugin p: %+v, want failed with its circuit open after 3 restarts", st)
	}
	if n := len(tracedPIDs(t, state, "p", "pids")); n != 4 {
		t.Errorf("%d launches, want 4", n)
	}
	checkNothingLeft(ctx, t, p, state, "p", sockDir, "with the circuit open")
}

// A plugin refused after it started, for a type another plugin serves, is
// stopped: gone and reaped, its socket removed.
func TestRefusedTypeLeavesNothing(t *testing.T) {
	ctx := pluginsContext(t)
	dir, state, sockDir := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "run")
	fake := fakePluginBin(t)
	writeTracedPlugin(t, dir, state, "a", fake)
	writeTracedPlugin(t, dir, state, "b", fake)
	p, err := loadPlugins(ctx, t, Options{Dir: dir, SocketDir: sockDir, Plugins: []Config{{Name: "a"}, {Name: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var refused string
	for _, st := range p.List() {
		if st.State == core.PluginRefused {
			refused = st.Name
		}
	}
	if refused == "" {
		t.Fatalf("no plugin refused: %+v", p.List())
	}
	waitReaped(ctx, t, state, refused, 5*time.Second)
	// The plugin that serves has its socket, go-plugin's directory and,
	// when durable, its record; nothing else may be there.
	live := pluginSocket(t, p, map[string]string{"a": "b", "b": "a"}[refused])
	dirs := 0
	for _, name := range socketDirLeftovers(t, sockDir) {
		switch path := filepath.Join(sockDir, name); {
		case path == live, strings.HasSuffix(name, recordSuffix):
		case strings.HasPrefix(name, "plugin-dir") && dirs == 0:
			dirs++
		default:
			t.Errorf("the socket directory holds %s", name)
		}
	}
}

// Close between the check of a plugin's executable and the start of its
// process: the process is never started, or killed as soon as it is, and
// go-plugin's directory for the launch is removed either way. (Which of
// the two happens depends on when the launch's abort runs: the rounds
// with a pause let it run before the launch goes on.)
func TestCloseBeforeTheProcessStartsLeavesNothing(t *testing.T) {
	ctx := pluginsContext(t)
	fake := fakePluginBin(t)
	reached, release := make(chan struct{}), make(chan struct{})
	afterChecksum = func(string) {
		reached <- struct{}{}
		<-release
	}
	t.Cleanup(func() { afterChecksum = nil })
	for round := range 6 {
		dir, state, sockDir := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "run")
		writeTracedPlugin(t, dir, state, "p", fake)
		p, err := Load(ctx, Options{Dir: dir, SocketDir: sockDir, Plugins: []Config{{Name: "p"}}})
		if err != nil {
			t.Fatal(err)
		}
		<-reached
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			p.Close()
		}()
		<-p.ctx.Done()
		if round%2 == 1 {
			time.Sleep(20 * time.Millisecond) // lets the abort's goroutine run first, most often
		}
		release <- struct{}{}
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Close did not return", round)
		}
		waitReaped(ctx, t, state, "p", 5*time.Second)
		if left := socketDirLeftovers(t, sockDir); len(left) > 0 {
			t.Errorf("round %d: after Close, the socket directory holds %q", round, left)
		}
	}
}

// writeServesOnce makes the traced plugin name in dir the fake plugin,
// whose first launch serves and every later one fails its Info.
func writeServesOnce(t *testing.T, dir, state, name string) {
	t.Helper()
	marker := filepath.Join(state, name+".launched")
	writeExecutable(t, state, name+".once", fmt.Sprintf("#!/bin/sh\nif [ -e %[1]s ]; then exec %[2]s -info fail; fi\n: > %[1]s\nexec %[2]s\n",
		marker, fakePluginBin(t)), 0o755)
	writeTracedPlugin(t, dir, state, name, filepath.Join(state, name+".once"))
}

// checkNothingLeft waits until every process of the traced plugin name has
// been reaped, and checks that the socket directory holds nothing of it,
// while p runs and after p.Close. when says when the first look is.
func checkNothingLeft(ctx context.Context, t *testing.T, p *Plugins, state, name, sockDir, when string) {
	t.Helper()
	waitReaped(ctx, t, state, name, 5*time.Second)
	if left := socketDirLeftovers(t, sockDir); len(left) > 0 {
		t.Errorf("%s, the socket directory holds %q", when, left)
	}
	p.Close()
	if left := socketDirLeftovers(t, sockDir); len(left) > 0 {
		t.Errorf("after Close, the socket directory holds %q", left)
	}
}
