package pluginhost

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// A plugin whose host is gone by the time it looks for it — killed while
// the plugin started — notices, and exits (no host held it): the host
// gives its pid (shared.HostPIDEnv), which the plugin watches instead of
// the parent it finds. It took init, its parent by then, for its host and
// ran on forever.
func TestPluginWhoseHostDiedBeforeItLookedExits(t *testing.T) {
	cmd := exec.Command(fakePluginBin(t))
	cmd.Env = append(os.Environ(),
		shared.MagicCookieKey+"="+shared.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS="+strconv.Itoa(shared.ProtocolVersion),
		"PLUGIN_UNIX_SOCKET_DIR="+t.TempDir(),
		shared.HostPIDEnv+"="+strconv.Itoa(deadPID(t)),
	)
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the plugin exited with %v, want 0", err)
		}
	case <-time.After(10 * time.Second):
		_ = killProcessGroup(cmd.Process.Pid)
		<-exited
		t.Fatal("the plugin whose host is gone still runs after 10s")
	}
}
