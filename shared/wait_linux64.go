//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64)

package shared

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"unsafe"

	"golang.org/x/sys/unix"
)

// siginfoChld is the head of Linux's siginfo_t on 64-bit architectures, with
// the fields waitid fills in for a child.
type siginfoChld struct {
	Signo  int32
	Errno  int32
	Code   int32
	_      int32
	Pid    int32
	UID    uint32
	Status int32
}

// si_code values for SIGCHLD.
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

// WaitExit blocks until the process cmd started has exited and says how.
// On 64-bit Linux it leaves the process a zombie (waitid WNOWAIT), so that
// its pid — and the id of the process group and session it leads — cannot
// name another process until Reap: a plugin may still signal what is left
// of the group after the leader exited. It waits on the process's pidfd in
// Go's poller, so a thousand sessions do not hold a thousand threads; where
// pidfds cannot be polled, in waitid. Elsewhere WaitExit reaps the process
// and Reap does nothing.
func WaitExit(cmd *exec.Cmd) (ExitStatus, error) {
	pid := cmd.Process.Pid
	var info unix.Siginfo
	if pollExit(pid, &info) != nil {
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if err == nil {
				break
			}
			if !errors.Is(err, unix.EINTR) {
				return ExitStatus{}, fmt.Errorf("wait for process %d: %w", pid, err)
			}
		}
	}
	return exitOf(pid, &info)
}

// PeekExit says whether the child pid has exited, and how, without
// waiting and without reaping it (waitid with WNOHANG and WNOWAIT): for a
// plugin that notices its children's exits itself, on SIGCHLD say, and
// keeps them zombies as WaitExit does. An error (with exited true) means
// the child cannot be waited for.
func PeekExit(pid int) (st ExitStatus, exited bool, err error) {
	var info unix.Siginfo
	for {
		err = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return ExitStatus{}, true, fmt.Errorf("wait for process %d: %w", pid, err)
	}
	if (*siginfoChld)(unsafe.Pointer(&info)).Pid == 0 {
		return ExitStatus{}, false, nil // WNOHANG: it has not exited
	}
	st, err = exitOf(pid, &info)
	return st, true, err
}

// exitOf decodes the exit status waitid filled info with for child pid.
func exitOf(pid int, info *unix.Siginfo) (ExitStatus, error) {
	chld := (*siginfoChld)(unsafe.Pointer(info))
	switch chld.Code {
	case cldExited:
		return ExitStatus{Code: int(chld.Status)}, nil
	case cldKilled, cldDumped:
		return signalStatus(unix.Signal(chld.Status)), nil
	default:
		return ExitStatus{}, fmt.Errorf("wait for process %d: unexpected si_code %d", pid, chld.Code)
	}
}

// Reap releases the zombie WaitExit left; after it, the pid may be reused.
func Reap(cmd *exec.Cmd) { _ = cmd.Wait() }

// pollExit waits until the child pid has exited, for its pidfd to become
// readable in Go's poller, and fills info as waitid does, leaving the child
// a zombie. An error means it could not wait that way.
func pollExit(pid int, info *unix.Siginfo) error {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	err = rc.Read(func(fd uintptr) bool {
		*info = unix.Siginfo{}
		werr = unix.Waitid(unix.P_PIDFD, int(fd), info, unix.WEXITED|unix.WNOWAIT|unix.WNOHANG, nil)
		switch {
		case errors.Is(werr, unix.EINTR):
			return false
		case werr != nil:
			return true
		default:
			// With WNOHANG, a child that has not exited leaves si_pid 0.
			return (*siginfoChld)(unsafe.Pointer(info)).Pid != 0
		}
	})
	if err != nil {
		return err
	}
	return werr
}
