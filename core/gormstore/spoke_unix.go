//go:build unix

package gormstore

import (
	"crypto/tls"
	"errors"
	"net"
	"syscall"
)

// serverSpoke reports whether c, a connection to the database idle in a
// pool, has input waiting: bytes the server sent unasked (the error with
// which it ends a session), the end of the stream, or an error. It reads
// nothing. A connection it cannot look at counts as one that spoke, to be
// checked with a ping.
func serverSpoke(c net.Conn) bool {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	spoke := true
	var b [1]byte
	// Control, not Read: Read would take the descriptor's read lock, and
	// wait behind a read the driver's background reader may have left
	// blocked on it. A peek with MSG_DONTWAIT never waits.
	err = rc.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		spoke = n > 0 || err == nil || !errors.Is(err, syscall.EAGAIN)
	})
	return spoke || err != nil
}
