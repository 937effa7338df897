package exampletest

import (
	"os/exec"
	"testing"
)

// The minimal plugin example passes its own tests: conformance through
// sharedtest.Serve and sharedtest.Launch, its config's errors, and that it
// imports nothing of ptyhost but the SDK. It needs nothing installed.
func TestPluginMinimal(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), "go", "test", "-race", "-count=1", "./...")
	cmd.Dir = exampleDir(t, "plugin-minimal")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test ./... in examples/plugin-minimal: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
