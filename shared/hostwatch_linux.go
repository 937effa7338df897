package shared

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// newHostWatch returns a function that reports whether the process host
// has exited. It watches the process through a pidfd taken now, which
// names that very process however its pid is reused later, and becomes
// readable once it has exited (a zombie its parent has not reaped yet
// counts as exited). Without pidfds (Linux before 5.3) it asks as other
// Unix systems do (signalHostWatch).
func newHostWatch(host int) func() bool {
	parent := os.Getppid()
	fd, err := unix.PidfdOpen(host, 0) // close-on-exec: no session inherits it
	if errors.Is(err, unix.ESRCH) {
		return func() bool { return true }
	}
	if err != nil {
		return signalHostWatch(host)
	}
	return func() bool {
		if reparented(parent, host) {
			return true
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			// A poll that does not wait still gets EINTR when a signal
			// comes: ask again, as it says nothing of the host.
			_, err := unix.Poll(fds, 0)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return err == nil && fds[0].Revents != 0
		}
	}
}
