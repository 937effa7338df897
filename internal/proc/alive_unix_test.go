//go:build unix

package proc

import (
	"os/exec"
	"testing"
	"time"
)

// A process that has exited is not alive, even before it is reaped: the
// plugins' socket sweep and records, and the database claim of a killed
// server, must not take a zombie (a killed server's plugin that init has
// yet to reap, a server whose shell has yet to reap it) for a live one.
func TestAliveNotZombie(t *testing.T) {
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	if !Alive(sleeper.Process.Pid) {
		t.Errorf("a running process %d is not alive", sleeper.Process.Pid)
	}

	quick := exec.Command("true")
	if err := quick.Start(); err != nil {
		t.Fatal(err)
	}
	pid := quick.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for !Zombie(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d never became a zombie", pid)
		}
		time.Sleep(5 * time.Millisecond) // /proc: nothing to wait on
	}
	if Alive(pid) {
		t.Errorf("the zombie %d is alive", pid)
	}
	if err := quick.Wait(); err != nil {
		t.Fatal(err)
	}
	if Alive(pid) || Alive(0) || Alive(-1) {
		t.Error("a reaped process, pid 0 or -1 is alive")
	}
}
