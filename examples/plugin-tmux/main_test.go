package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// binDir holds the binaries the tests build, once per test binary.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ptyhost-plugin-tmux-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needTmux skips the test when tmux is not installed, unless
// PTYHOST_INTEGRATION=1 asks for every test to run.
func needTmux(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("PTYHOST_INTEGRATION") == "1" {
			t.Fatalf("tmux is not installed: %v", err)
		}
		t.Skipf("tmux is not installed: %v", err)
	}
}

// newSocket returns a tmux socket name of the test's own; the test's
// cleanup kills that tmux server, with whatever sessions are left on it.
// Call it before starting what uses it, so that its cleanup runs last.
func newSocket(t testing.TB) string {
	t.Helper()
	needTmux(t)
	b := make([]byte, 6)
	rand.Read(b)
	socket := "ptyhost-test-" + hex.EncodeToString(b)
	t.Cleanup(func() {
		_ = exec.Command("tmux", "-L", socket, "kill-server").Run()
		// tmux 3.3a leaves the socket file behind.
		dir := os.Getenv("TMUX_TMPDIR")
		if dir == "" {
			dir = "/tmp"
		}
		_ = os.Remove(filepath.Join(dir, fmt.Sprintf("tmux-%d", os.Getuid()), socket))
	})
	return socket
}

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// pluginBinary builds ptyhost-plugin-tmux from this directory, once.
func pluginBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		builtPath = filepath.Join(binDir, "ptyhost-plugin-tmux")
		out, err := exec.Command("go", "build", "-o", builtPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtPath
}

// conformanceConfig is the conformance cases' config for a tmux server on
// socket. The plugin inherits FROM_PLUGIN (a server's variable), and the
// environment's config sets FROM_CONFIG: unset_env checks UnsetEnv removes
// both.
func conformanceConfig(t *testing.T, socket string) sharedtest.Config {
	t.Setenv("FROM_PLUGIN", "yes")
	return sharedtest.Config{
		UnsetEnv: []string{"FROM_PLUGIN", "FROM_CONFIG"},
		// tmux 3.3a (Debian 12) may close the pane of a command that exits
		// right after writing before it has read that output (see
		// README.md); the scripts linger a little after their last write,
		// as an interactive program does.
		Script: func(script string) []string {
			return []string{"/bin/sh", "-c", script + "\nsleep 0.1"}
		},
		Config:    json.RawMessage(fmt.Sprintf(`{"socket": %q, "shell": "/bin/sh", "env": {"FROM_CONFIG": "yes"}}`, socket)),
		BadConfig: json.RawMessage(`{"sockt": "ptyhost"}`),
		Dir:       t.TempDir(),
		Skip: map[string]string{
			"large_output": "the host sees a tmux client, which redraws the session's screen: not the command's bytes",
		},
	}
}

// The implementation through the real gRPC glue, in this process.
func TestConformance(t *testing.T) {
	socket := newSocket(t)
	sharedtest.Run(t, sharedtest.Serve(t, New(nil)), conformanceConfig(t, socket))
}

// The built binary, started as ptyhost starts it.
func TestConformanceBinary(t *testing.T) {
	socket := newSocket(t)
	cfg := conformanceConfig(t, socket) // before Launch, which passes on FROM_PLUGIN
	sharedtest.Run(t, sharedtest.Launch(t, pluginBinary(t)), cfg)
}
