//go:build unix && !linux

package rawio

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Read makes one read(2) of fd into p, repeated if a signal interrupts it.
// Outside Linux it is an ordinary system call.
func Read(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Read(fd, p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return max(n, 0), err
	}
}

// Write makes one write(2) of p to fd, as Read does.
func Write(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Write(fd, p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return max(n, 0), err
	}
}

// canWrite reports whether fd's buffer has room now (POLLOUT).
func canWrite(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n == 1 && fds[0].Revents&unix.POLLOUT != 0
}
