package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ptyhost/ptyhost/internal/testbin"
)

// A run of this package's tests that builds the binaries (no
// PTYHOST_BIN_DIR) removes them when it ends: each run left a
// ptyhost-testbin-* directory of binaries in TMPDIR (17 GB of them on a
// machine that had run the tests a few hundred times).
func TestTestbinRemovesItsBuilds(t *testing.T) {
	if os.Getenv("PTYHOST_TESTBIN_LEAK_CHILD") == "1" {
		// The child run: build a binary through testbin, which its
		// TestMain (leakcheck.Main) is to remove.
		if _, err := os.Stat(testbin.Path(t, "plugins/host", "plugins/ptyhost-plugin-host")); err != nil {
			t.Fatal(err)
		}
		return
	}
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTestbinRemovesItsBuilds$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PTYHOST_TESTBIN_LEAK_CHILD=1", "TMPDIR="+tmp, "PTYHOST_BIN_DIR=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the child test run: %v\n%s", err, out)
	}
	left, err := filepath.Glob(filepath.Join(tmp, "ptyhost-testbin-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("the test run left %q behind", left)
	}
}
