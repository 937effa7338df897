package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/testbin"
	"github.com/ptyhost/ptyhost/shared"
)

// Tests of how plugin processes are started, watched and stopped, with
// plugins whose children outlive them: a wrapper script that leaves a
// helper holding the plugin's stdout and stderr, and a plugin that never
// handshakes.

// sleepPath is sleep's absolute path: third-party plugins get no PATH.
func sleepPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeHelperWrapper makes the plugin name in dir a shell script that
// starts a helper (sleep) in the background, which inherits the plugin's
// stdout and stderr, writes the helper's pid to state/name.helper, and then
// execs the fake plugin.
func writeHelperWrapper(t *testing.T, dir, state, name string) {
	t.Helper()
	writeExecutable(t, dir, ExecutablePrefix+name, fmt.Sprintf("#!/bin/sh\n%s 600 &\necho $! > %s\nexec %s \"$@\"\n",
		sleepPath(t), filepath.Join(state, name+".helper"), fakePluginBin(t)), 0o755)
}

// readPID reads a pid a script wrote, waiting for it.
func readPID(ctx context.Context, t *testing.T, path string) int {
	t.Helper()
	for {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			return pid
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no pid in %s before the deadline", path)
		case <-time.After(10 * time.Millisecond): // a file written by another process: nothing to wait on
		}
	}
}

// within runs f and fails the test unless it returns within d.
func within(t *testing.T, d time.Duration, what string, f func()) time.Duration {
	t.Helper()
	start := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
	took := time.Since(start)
	t.Logf("%s took %v", what, took)
	return took
}

// A plugin killed with SIGKILL whose helper still holds its stderr is seen
// dead at once, from the process, not when the helper closes the pipe:
// it is restarting, creates in its environments answer 503, and the
// helper, in the plugin's process group, is killed with it.
func TestPluginDeathSeenFromTheProcess(t *testing.T) {
	ctx := pluginsContext(t)
	dir, state := t.TempDir(), t.TempDir()
	writeHelperWrapper(t, dir, state, "wrapped")
	w := newPluginWorld(t, Options{Dir: dir, RestartBackoff: time.Hour,
		Plugins: []Config{{Name: "wrapped", Args: []string{"-types", "WRAPPED"}}}})
	w.addEnv(t, "w", "WRAPPED", "{}")
	st, _ := w.p.Plugin("wrapped")
	helper := readPID(ctx, t, filepath.Join(state, "wrapped.helper"))
	if !alive(helper) {
		t.Fatalf("the helper %d is not running", helper)
	}

	start := time.Now()
	killPlugin(t, st.PID)
	// Generous for a loaded machine; before, it took as long as the
	// helper lived (600 s).
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	got := waitPlugin(dctx, t, w.p, "wrapped", "restarting", func(st core.PluginStatus) bool { return st.State == core.PluginRestarting })
	t.Logf("restarting %v after the kill", time.Since(start))
	if got.PID != 0 {
		t.Errorf("a restarting plugin lists pid %d", got.PID)
	}
	waitDead(dctx, t, []int{helper})
	code, body := w.do(t, "POST", "/api/v1/sessions", `{"environment_id":"w","command":["exit","0"]}`)
	if code != 503 || !strings.Contains(fmt.Sprint(body["error"]), "plugin wrapped is restarting") {
		t.Errorf("creating a session: %d %v, want 503 saying the plugin is restarting", code, body)
	}
}

// Restart and Close return within a bound whatever the plugin's children
// do, and even when the plugin does not answer at all (SIGSTOP); the
// plugin's helper dies with it.
func TestPluginStopIsBounded(t *testing.T) {
	ctx := pluginsContext(t)
	dir, state := t.TempDir(), t.TempDir()
	writeHelperWrapper(t, dir, state, "wrapped")
	p, err := loadPlugins(ctx, t, Options{Dir: dir, Plugins: []Config{{Name: "wrapped"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	helperFile := filepath.Join(state, "wrapped.helper")

	// The bound: the stop grace, the drain, and room for a loaded machine.
	const bound = 10 * time.Second
	tests := []struct {
		name   string
		freeze bool // SIGSTOP the plugin first: it answers nothing
	}{
		{"restart", false},
		{"restart a stopped plugin", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := waitPlugin(ctx, t, p, "wrapped", "running", running)
			helper := readPID(ctx, t, helperFile)
			os.Remove(helperFile)
			if tt.freeze {
				if err := syscall.Kill(before.PID, syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
			}
			var st core.PluginStatus
			within(t, bound, "Restart", func() {
				rctx, cancel := context.WithTimeout(ctx, bound)
				defer cancel()
				st, err = p.Restart(rctx, "wrapped")
			})
			if err != nil || st.State != core.PluginRunning || st.PID == before.PID {
				t.Errorf("Restart = %+v, %v; want running with a new pid", st, err)
			}
			dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			waitDead(dctx, t, []int{before.PID, helper})
		})
	}

	st := waitPlugin(ctx, t, p, "wrapped", "running", running)
	helper := readPID(ctx, t, helperFile)
	within(t, bound, "Close", p.Close)
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	waitDead(dctx, t, []int{st.PID, helper})
}

// A plugin that never handshakes holds up neither Load nor the
// other plugins; its environment types answer "still starting" (503);
// Close kills it at once; and after the start timeout it is failed and
// killed.
func TestPluginNeverHandshakes(t *testing.T) {
	ctx := pluginsContext(t)
	dir, state := testbin.PluginDir(t, "host"), t.TempDir()
	pidFile := filepath.Join(state, "mute.pid")
	writeExecutable(t, dir, ExecutablePrefix+"mute", fmt.Sprintf("#!/bin/sh\necho $$ > %s\nexec %s 600\n", pidFile, sleepPath(t)), 0o755)
	opts := Options{Dir: dir, Plugins: []Config{{Name: "mute"}}, StartTimeout: time.Minute}

	var p *Plugins
	within(t, 5*time.Second, "Load", func() {
		var err error
		if p, err = Load(ctx, opts); err != nil {
			t.Error(err)
		}
	})
	if p == nil {
		t.FailNow()
	}
	defer p.Close()
	if err := p.WaitType(ctx, "HOST"); err != nil {
		t.Fatalf("WaitType(HOST): %v", err)
	}
	mute := readPID(ctx, t, pidFile)
	if st, _ := p.Plugin("mute"); st.State != core.PluginStarting {
		t.Errorf("mute: %+v, want starting", st)
	}
	select {
	case <-p.Started():
		t.Error("Started() is closed while mute starts")
	default:
	}
	_, err := p.Environment("MUTE")
	if !errors.Is(err, shared.ErrUnavailable) || !strings.Contains(err.Error(), "still starting: mute") {
		t.Errorf("Environment(MUTE): %v, want ErrUnavailable saying mute is still starting", err)
	}
	within(t, 5*time.Second, "Close while a plugin starts", p.Close)
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	waitDead(dctx, t, []int{mute})

	// With a short start timeout: failed, and killed.
	os.Remove(pidFile)
	opts.StartTimeout = 300 * time.Millisecond
	p, err = loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st, _ := p.Plugin("mute")
	if st.State != core.PluginFailed || !strings.Contains(st.Reason, "within the start timeout (300ms)") {
		t.Errorf("mute after the start timeout: %+v, want failed", st)
	}
	// On a loaded machine the start timeout can pass before the script
	// wrote its pid: then it was killed before it did anything.
	if b, err := os.ReadFile(pidFile); err == nil {
		if mute, err = strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			dctx, cancel = context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			waitDead(dctx, t, []int{mute})
		}
	}
	if _, err := p.Environment("MUTE"); !errors.Is(err, core.ErrNoPlugin) {
		t.Errorf("Environment(MUTE) once every plugin started: %v, want core.ErrNoPlugin", err)
	}
}

// The plugins' sockets go in SocketDir, private, never in the temporary
// directory; stale sockets a killed server left there are removed at
// load, but not the sockets of a loader still using the directory.
func TestPluginSocketDir(t *testing.T) {
	ctx := pluginsContext(t)
	dir := testbin.PluginDir(t, "host")
	sockDir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(sockDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// What a killed server leaves: a socket and a go-plugin directory.
	stale := filepath.Join(sockDir, "plugin123")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if err := os.Mkdir(filepath.Join(sockDir, "plugin-dir456"), 0o700); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // the plugin inherits it

	p, err := loadPlugins(ctx, t, Options{Dir: dir, SocketDir: sockDir, RestartBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	socket := pluginSocket(t, p, "host")
	if filepath.Dir(socket) != sockDir {
		t.Errorf("the plugin's socket is %q, want it in %s", socket, sockDir)
	}
	for _, gone := range []string{stale, filepath.Join(sockDir, "plugin-dir456")} {
		if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (%v)", gone, err)
		}
	}
	if fi, err := os.Stat(sockDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket dir: %v, %v; want mode 0700", fi.Mode(), err)
	}

	// A second loader on the same directory leaves the first one's socket.
	p2, err := loadPlugins(ctx, t, Options{Dir: dir, SocketDir: sockDir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(socket); err != nil {
		t.Errorf("the first loader's socket went when a second loader started: %v", err)
	}
	p2.Close()

	// A killed plugin's socket goes when it is restarted.
	st, _ := p.Plugin("host")
	killPlugin(t, st.PID)
	waitPlugin(ctx, t, p, "host", "restart", func(now core.PluginStatus) bool { return running(now) && now.PID != st.PID })
	if _, err := os.Lstat(socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed plugin's socket %s is still there (%v)", socket, err)
	}
	p.Close()
	entries, _ := os.ReadDir(sockDir)
	for _, e := range entries {
		if e.Name() != socketLockName {
			t.Errorf("after Close, %s holds %s", sockDir, e.Name())
		}
	}
	entries, _ = os.ReadDir(tmp)
	for _, e := range entries {
		t.Errorf("the temporary directory holds %s", e.Name())
	}

	// Without SocketDir: a private directory of its own, removed by Close.
	p, err = loadPlugins(ctx, t, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	own := filepath.Dir(pluginSocket(t, p, "host"))
	if fi, err := os.Stat(own); err != nil || fi.Mode().Perm() != 0o700 || !strings.HasPrefix(filepath.Base(own), "ptyhost-plugins-") {
		t.Errorf("the socket's directory %s: %v, %v; want a private ptyhost-plugins-* one", own, fi, err)
	}
	p.Close()
	if _, err := os.Stat(own); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is still there after Close (%v)", own, err)
	}
}

func TestPluginSocketDirChecks(t *testing.T) {
	long := "/" + strings.Repeat("d", maxSocketDirLen)
	if err := (Options{SocketDir: long}).Validate(); err == nil || !strings.Contains(err.Error(), "at most 90") {
		t.Errorf("Validate of a %d-byte SocketDir: %v", len(long), err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := openSocketDir(file); err == nil {
		t.Error("openSocketDir of a file succeeded")
	}
}
