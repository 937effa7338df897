package pluginhost

import (
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// pidWatch tells a process's exit, and can stop watching one that runs
// without touching it.
func TestPIDWatch(t *testing.T) {
	pid := startSleeper(t).Process.Pid

	w, err := watchPID(pid)
	if err != nil {
		t.Fatal(err)
	}
	if !w.alive() {
		t.Fatal("a running process is not alive")
	}
	w.stop()
	select {
	case <-w.exited:
		t.Fatal("stop closed exited")
	default:
	}
	if err := w.killGroup(); err != nil || !alive(pid) {
		t.Fatalf("killGroup after stop: %v; the process must be left alone", err)
	}

	w, err = watchPID(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()
	if err := w.killGroup(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the killed process's exit was not seen")
	}
	if w.alive() {
		t.Error("alive after the exit")
	}

	if _, err := watchPID(deadPID(t)); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("watchPID of an exited process: %v, want ESRCH", err)
	}
}

// startSleeper starts a process that sleeps a minute, the leader of a
// group of its own as a plugin is; it is killed at the test's end.
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(sleepPath(t), "60")
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}
