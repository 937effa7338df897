package pluginhost

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
)

// While the supervisor retries a crashed plugin whose restarts fail, the
// plugin reads starting or restarting, never failed, until the circuit
// opens: failed meant given up on, and WaitType stopped waiting for a
// plugin that was about to be tried again.
func TestFailedRetriesReadRestarting(t *testing.T) {
	ctx := pluginsContext(t)
	dir, state, sockDir := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "run")
	writeServesOnce(t, dir, state, "p")
	var mu sync.Mutex
	var states []string
	testHookSetState = func(name string, st core.PluginState, reason string) {
		mu.Lock()
		defer mu.Unlock()
		states = append(states, fmt.Sprintf("%s (%s)", st, reason))
	}
	t.Cleanup(func() { testHookSetState = nil })
	p, err := loadPlugins(ctx, t, Options{Dir: dir, SocketDir: sockDir, Plugins: []Config{{Name: "p"}},
		RestartBackoff: 20 * time.Millisecond, MaxRestartBackoff: 20 * time.Millisecond, CrashLimit: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st := waitPlugin(ctx, t, p, "p", "running", running)
	killPlugin(t, st.PID)
	waitPlugin(ctx, t, p, "p", "the circuit to open", func(st core.PluginStatus) bool {
		return st.State == core.PluginFailed && strings.Contains(st.Reason, "circuit open")
	})
	if err := p.WaitType(ctx, "FAKE"); err == nil || !strings.Contains(err.Error(), "circuit open") {
		t.Errorf("WaitType with the circuit open: %v, want the circuit's error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, s := range states {
		if strings.HasPrefix(s, string(core.PluginFailed)) && i != len(states)-1 {
			t.Errorf("the plugin read %s between its retries; states: %q", s, states)
		}
	}
	if n := strings.Count(strings.Join(states, "\n"), string(core.PluginRestarting)+" ("); n != 3 {
		t.Errorf("%d restarting states, want 3 (a crash, then two failed retries); states: %q", n, states)
	}
}
