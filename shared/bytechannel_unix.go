//go:build unix

package shared

import (
	"errors"
	"net"
	"syscall"
)

// writeNow returns a function that writes as much of p to conn as it takes
// without waiting (one write system call on the non-blocking socket) and
// returns how much that was: 0 if the socket is full or closed.
func writeNow(conn *net.UnixConn) func(p []byte) int {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil
	}
	return func(p []byte) int {
		var n int
		_ = rc.Write(func(fd uintptr) bool {
			for {
				m, err := syscall.Write(int(fd), p)
				if errors.Is(err, syscall.EINTR) {
					continue
				}
				n = max(m, 0)
				return true // done either way: never wait in the poller
			}
		})
		return n
	}
}
