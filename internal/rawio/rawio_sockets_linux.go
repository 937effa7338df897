//go:build linux && !386 && !s390x

package rawio

import "syscall"

func recv(fd int, p []byte) (int, error) {
	return rawCall(syscall.SYS_RECVFROM, fd, p, syscall.MSG_DONTWAIT)
}

func send(fd int, p []byte) (int, error) {
	return rawCall(syscall.SYS_SENDTO, fd, p, syscall.MSG_DONTWAIT|syscall.MSG_NOSIGNAL)
}

// socketsRaw says whether sockets are read and written with recv and send
// (MSG_DONTWAIT), whatever their mode.
const socketsRaw = true
