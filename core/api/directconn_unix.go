//go:build unix

package api

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// canWrite reports whether the socket takes a small write now, without
// waiting: its send buffer has room (POLLOUT).
func canWrite(rc syscall.RawConn) bool {
	ok := false
	_ = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, 0)
		ok = err == nil && n == 1 && fds[0].Revents&unix.POLLOUT != 0
	})
	return ok
}
