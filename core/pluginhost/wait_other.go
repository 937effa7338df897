//go:build !linux

package pluginhost

import (
	"os/exec"
)

// waitExited returns once the process started by cmd has exited, whoever
// still holds its stdout and stderr. Without Linux's waitid(WNOWAIT) it
// reaps the process (reaped is true, and err is what cmd.Wait would have
// said of the exit): the caller must not call cmd.Wait, and the pid may be
// reused before the group is killed, a window of microseconds. stop cannot
// interrupt the wait: a plugin left running by Detach is watched until it
// exits (stopped is always false).
func waitExited(cmd *exec.Cmd, _ int, _ <-chan struct{}) (reaped, stopped bool, err error) {
	st, err := cmd.Process.Wait()
	if err == nil && !st.Success() {
		err = &exec.ExitError{ProcessState: st}
	}
	return true, false, err
}
