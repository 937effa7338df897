package pluginhost

import (
	"errors"
	"os"
	"os/exec"
)

// setProcessGroup does nothing on Windows: a plugin is killed alone.
func setProcessGroup(*exec.Cmd) {}

// killProcessGroup kills the process pid: Windows has no process groups
// to signal.
func killProcessGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil // gone already
	}
	if err := p.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// lockFile takes no lock on Windows: two servers sharing one data
// directory there may sweep each other's sockets.
func lockFile(*os.File, bool) error { return nil }

// fileOwner reports no owner on Windows.
func fileOwner(os.FileInfo) (int, bool) { return 0, false }

// processAlive reports whether a process with id pid exists.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}
