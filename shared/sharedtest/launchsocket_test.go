package sharedtest_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// A plugin that Launch started and that was killed leaves its socket
// nowhere: go-plugin makes it in a private directory that the test's
// cleanup removes. (It was made in TMPDIR, where a killed plugin, which
// cannot remove its own, left it: a hundred such sockets gathered in /tmp
// on a machine that ran the tests.)
func TestLaunchLeavesNoSocket(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	pidFile := filepath.Join(tmp, "pid")
	t.Run("killed", func(t *testing.T) {
		t.Setenv(fakePluginEnv, "1")
		t.Setenv(fakePluginPIDFile, pidFile)
		t.Setenv("TMPDIR", tmp)
		env := sharedtest.Launch(t, exe)
		if _, err := env.Info(context.Background()); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	})
	left, err := filepath.Glob(filepath.Join(tmp, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range left {
		if p != pidFile {
			t.Errorf("after the killed plugin's test, TMPDIR holds %s", p)
		}
	}
}
