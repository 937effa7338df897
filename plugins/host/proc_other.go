//go:build unix && !(linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64))

package main

import (
	"errors"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
)

// Outside 64-bit Linux, Kill and Close signal the child's process group
// only: background jobs an interactive shell moved to other groups survive.

// waitExited waits for the child and reaps it.
func waitExited(cmd *exec.Cmd) (shared.ExitStatus, error) {
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		return shared.ExitStatus{}, err
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return signalStatus(unix.Signal(ws.Signal())), nil
	}
	return shared.ExitStatus{Code: cmd.ProcessState.ExitCode()}, nil
}

// reap does nothing: waitExited reaped the child.
func reap(*exec.Cmd) {}

func signalSession(_ *orphanage, sid int, sig unix.Signal) { _ = unix.Kill(-sid, sig) }

func waitSessionGone(*orphanage, int, time.Duration) {}

func killSession(_ *orphanage, sid int) { _ = unix.Kill(-sid, unix.SIGKILL) }

// orphanage adopts nothing outside 64-bit Linux.
type orphanage struct{}

func adoptOrphans() (*orphanage, error) { return nil, nil }

func (*orphanage) start(cmd *exec.Cmd) error { return cmd.Start() }

func (*orphanage) forget(int) {}
