package pluginhost

import (
	"bytes"
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/testbin"
)

// A plugin that started is not killed because asking it to hold its
// sessions outlasted the start timeout: the timeout bounds the hold, which
// then fails (the sessions end with the server), and the plugin serves on.
// (The start's abort, meant for a process that never handshakes, used to
// fire during the hold and kill the new process, which the supervisor then
// took for a crash and restarted, again and again.)
func TestSlowHoldKeepsTheStartedPlugin(t *testing.T) {
	ctx := pluginsContext(t)
	beforeHold = func(ctx context.Context) { <-ctx.Done() }
	t.Cleanup(func() { beforeHold = nil })
	opts := durableOptions(t)
	opts.StartTimeout = 2 * time.Second // for the handshake under load; the hold waits it out
	p, err := loadPlugins(ctx, t, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st, err := p.Plugin("host")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != core.PluginRunning || st.PID == 0 {
		t.Fatalf("after a hold past the start timeout: %s %q (pid %d), want running", st.State, st.Reason, st.PID)
	}
	// Long enough for a killed process to be noticed and restarted.
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(st.PID, 0); err != nil {
		t.Fatalf("the plugin's process %d: %v", st.PID, err)
	}
	if now, _ := p.Plugin("host"); now.PID != st.PID || now.Restarts != 0 || now.State != core.PluginRunning {
		t.Fatalf("the plugin now: %s %q, pid %d, %d restarts; want still running as pid %d, not restarted", now.State, now.Reason, now.PID, now.Restarts, st.PID)
	}
	pty := spawnHost(ctx, t, p, "s", []string{"/bin/sh", "-c", "echo served"})
	defer pty.Close()
	readPTY(pty).until(ctx, t, "the session's output", func(b []byte) bool { return bytes.Contains(b, []byte("served")) })
}

// A Close while a started plugin is asked to hold its sessions stops the
// plugin, as it stops any running one: nothing of it is left.
func TestCloseDuringHoldLeavesNothing(t *testing.T) {
	ctx := pluginsContext(t)
	reached := make(chan struct{}, 1)
	beforeHold = func(ctx context.Context) {
		reached <- struct{}{}
		<-ctx.Done()
	}
	t.Cleanup(func() { beforeHold = nil })
	dir, state, sockDir := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "run")
	writeTracedPlugin(t, dir, state, "host", testbin.Path(t, "plugins/host", "plugins/ptyhost-plugin-host"))
	p, err := Load(ctx, Options{Dir: dir, SocketDir: sockDir, Plugins: []Config{{Name: "host"}}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-reached:
	case <-ctx.Done():
		t.Fatal("the plugin was never asked to hold")
	}
	p.Close()
	checkNothingLeft(ctx, t, p, state, "host", sockDir, "after Close")
}
