package pluginhost

import (
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// A poll of the pidfd that a signal interrupts (EINTR, which a poll that
// does not wait gets too) says nothing of the process: alive asks again.
// Taken for an exit, a server reattaching to a plugin that ran on took it
// for gone, launched another and recorded the kept sessions lost.
func TestPIDWatchAliveThroughEINTR(t *testing.T) {
	cmd := startSleeper(t)
	w, err := watchPID(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer w.stop()

	var interrupted atomic.Int32
	pollPidfd = func(fds []unix.PollFd, timeout int) (int, error) {
		if interrupted.Add(1) <= 3 {
			return -1, unix.EINTR
		}
		return unix.Poll(fds, timeout)
	}
	t.Cleanup(func() { pollPidfd = unix.Poll })

	if !w.alive() {
		t.Fatal("a running process whose poll was interrupted is not alive")
	}
	if n := interrupted.Load(); n < 4 {
		t.Fatalf("polled %d times, want the interrupted polls and one more", n)
	}
	// killGroup asks alive first: it still reaches the process.
	interrupted.Store(0)
	if err := w.killGroup(); err != nil {
		t.Fatal(err)
	}
	if st, err := cmd.Process.Wait(); err != nil || st.Success() {
		t.Errorf("the process: %v, %v; want it killed through the interrupted watch", st, err)
	}
}
