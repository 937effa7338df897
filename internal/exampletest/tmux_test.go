package exampletest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// exampleDir is the directory of the example module name.
func exampleDir(t *testing.T, name string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find this file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "examples", name)
}

// The TMUX plugin example passes its own tests: conformance through
// sharedtest.Serve and sharedtest.Launch, and end to end through a ptyhost
// server. They need tmux; without it they are skipped, unless
// PTYHOST_INTEGRATION=1 asks for every integration test to run.
func TestPluginTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil && os.Getenv("PTYHOST_INTEGRATION") != "1" {
		t.Skipf("tmux is not installed: %v", err)
	}
	cmd := exec.CommandContext(t.Context(), "go", "test", "-race", "-count=1", "./...")
	cmd.Dir = exampleDir(t, "plugin-tmux")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test ./... in examples/plugin-tmux: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
