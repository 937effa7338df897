package pluginhost

import (
	"os/exec"
	"testing"
	"time"
)

// A process that has exited is not alive, even before it is reaped: the
// socket sweep and the records must not take a zombie (a killed server's
// plugin that init has yet to reap) for a live plugin.
func TestProcessAliveNotZombie(t *testing.T) {
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	if !processAlive(sleeper.Process.Pid) {
		t.Errorf("a running process %d is not alive", sleeper.Process.Pid)
	}

	quick := exec.Command("true")
	if err := quick.Start(); err != nil {
		t.Fatal(err)
	}
	pid := quick.Process.Pid
	defer func() { _ = quick.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for !zombie(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d never became a zombie", pid)
		}
		time.Sleep(5 * time.Millisecond) // /proc: nothing to wait on
	}
	if processAlive(pid) {
		t.Errorf("the zombie %d is alive", pid)
	}
}
