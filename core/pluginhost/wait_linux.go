package pluginhost

import (
	"errors"
	"os/exec"

	"golang.org/x/sys/unix"
)

// waitExited returns once the process pid (started by cmd) has exited,
// whoever still holds its stdout and stderr. It leaves the process a
// zombie (WNOWAIT), so that its pid, which is also its group's id, cannot
// be reused before the group is killed: reaped is false, and the caller
// reaps it with cmd.Wait.
func waitExited(cmd *exec.Cmd, pid int) (reaped bool, err error) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return false, nil
		}
	}
}
