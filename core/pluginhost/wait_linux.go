package pluginhost

import (
	"errors"
	"os/exec"

	"golang.org/x/sys/unix"
)

// waitExited returns once the process pid (started by cmd) has exited,
// whoever still holds its stdout and stderr, or once stop is closed
// (stopped is then true, unless the process had exited). It leaves the
// process a zombie, so that its pid, which is also its group's id, cannot
// be reused before the group is killed: reaped is false, and the caller
// reaps it with cmd.Wait.
//
// It waits on a pidfd, which stop can interrupt. On a kernel without
// pidfds (before 5.3) it waits with waitid(WNOWAIT), which stop cannot
// interrupt: a plugin left running by Detach is then watched until it
// exits.
func waitExited(cmd *exec.Cmd, pid int, stop <-chan struct{}) (reaped, stopped bool, err error) {
	if w, err := watchPID(pid); err == nil {
		defer w.stop()
		select {
		case <-w.exited:
			return false, false, nil
		case <-stop:
			return false, w.alive(), nil
		}
	}
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return false, false, nil
		}
	}
}
