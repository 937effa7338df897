//go:build unix && !linux

package rawio

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Outside Linux the calls are ordinary system calls, and sockets are read
// and written as files are.

func read(fd int, p []byte) (int, error)  { return retried(unix.Read, fd, p) }
func write(fd int, p []byte) (int, error) { return retried(unix.Write, fd, p) }
func recv(fd int, p []byte) (int, error)  { return read(fd, p) }
func send(fd int, p []byte) (int, error)  { return write(fd, p) }

const socketsRaw = false

// retried calls op until a signal does not interrupt it.
func retried(op func(int, []byte) (int, error), fd int, p []byte) (int, error) {
	for {
		n, err := op(fd, p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return max(n, 0), err
	}
}

// nonBlocking reports whether fd is in non-blocking mode (O_NONBLOCK).
func nonBlocking(fd int) bool {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return err == nil && fl&unix.O_NONBLOCK != 0
}

// canWrite reports whether fd's buffer has room now (POLLOUT).
func canWrite(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 1 && fds[0].Revents&unix.POLLOUT != 0
}
