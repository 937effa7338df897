//go:build unix && !(linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64))

package main

import (
	"os/exec"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
)

// Outside 64-bit Linux, Kill and Close signal the child's process group
// only: background jobs an interactive shell moved to other groups survive.

func signalSession(_ *orphanage, sid int, sigs ...unix.Signal) {
	for _, sig := range sigs {
		_ = unix.Kill(-sid, sig)
	}
}

func waitSessionGone(*orphanage, int, time.Duration) {}

func killSession(_ *orphanage, sid int) { _ = unix.Kill(-sid, unix.SIGKILL) }

// orphanage adopts nothing outside 64-bit Linux.
type orphanage struct{}

func adoptOrphans() (*orphanage, error) { return nil, nil }

// start starts cmd and waits for it in a goroutine (see startAlone).
func (*orphanage) start(cmd *exec.Cmd, exited func(shared.ExitStatus, error)) (int, error) {
	return startAlone(cmd, exited)
}

// suspect does nothing: shared.WaitExit notices every exit at once.
func (*orphanage) suspect(int) {}

// reapLeader does nothing more than shared.Reap: shared.WaitExit has
// reaped the leader already outside 64-bit Linux.
func (*orphanage) reapLeader(cmd *exec.Cmd, _ int) { shared.Reap(cmd) }
