//go:build unix

package shared

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// The host a plugin watches need not be its parent: a plugin installed as
// a wrapper script that runs the real executable without exec has the
// script's shell for its parent. Such a host counts as running while it
// runs, and as gone once it exits; a plugin that compared its parent with
// the host took the running server for gone at its first poll. The
// plugin's own parent runs as long as the test does; a pid that names no
// process is gone at once. Both watches are checked: the pidfd's (Linux)
// and the signal's (other Unix systems, Linux without pidfds).
func TestHostWatch(t *testing.T) {
	for name, watch := range map[string]func(int) func() bool{"newHostWatch": newHostWatch, "signalHostWatch": signalHostWatch} {
		t.Run(name, func(t *testing.T) { testHostWatch(t, watch) })
	}
}

func testHostWatch(t *testing.T, newHostWatch func(int) func() bool) {
	if newHostWatch(os.Getppid())() {
		t.Error("the plugin's running parent counts as gone")
	}

	host := exec.Command("sleep", "60")
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	gone := newHostWatch(host.Process.Pid)
	if gone() {
		t.Error("a running host that is not the plugin's parent counts as gone")
	}
	_ = host.Process.Kill()
	_ = host.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for !gone() {
		if time.Now().After(deadline) {
			t.Fatal("a host that exited still counts as running after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	if !newHostWatch(host.Process.Pid)() {
		t.Error("a pid that names no process counts as a running host")
	}
}
