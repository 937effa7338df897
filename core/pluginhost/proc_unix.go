//go:build unix

package pluginhost

import (
	"errors"
	"os"
	"os/exec"
	"syscall"

	"github.com/ptyhost/ptyhost/internal/proc"
)

// setProcessGroup makes cmd's process the leader of a process group of its
// own, so that killProcessGroup reaches whatever it forks.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killProcessGroup sends SIGKILL to the process group pgid; a group that
// is gone already is no error.
func killProcessGroup(pgid int) error {
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// lockFile takes an advisory lock on f: with exclusive, an exclusive lock
// if it is free at once (else an error); without, a shared lock, waiting
// for an exclusive holder (an exclusive lock held through f converts).
func lockFile(f *os.File, exclusive bool) error {
	if exclusive {
		return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
}

// fileOwner returns the uid owning fi's file.
func fileOwner(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// processAlive reports whether a process with id pid runs. A zombie,
// which has exited and waits for its parent (init, for a plugin whose
// server died) to reap it, does not (proc.Alive).
func processAlive(pid int) bool { return proc.Alive(pid) }
