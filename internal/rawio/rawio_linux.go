package rawio

import (
	"syscall"
	"unsafe"
)

// The system calls below are raw (syscall.RawSyscall): the runtime is not
// told, so they must never block. read and write are made only on a
// descriptor found in non-blocking mode just before (nonBlocking), recv
// and send on a socket with MSG_DONTWAIT, which never waits whatever the
// descriptor's mode.

func read(fd int, p []byte) (int, error) {
	return rawCall(syscall.SYS_READ, fd, p, 0)
}

func write(fd int, p []byte) (int, error) {
	return rawCall(syscall.SYS_WRITE, fd, p, 0)
}

func rawCall(trap uintptr, fd int, p []byte, flags uintptr) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	for {
		// recvfrom and sendto take two more arguments, the address and
		// its length: none.
		r, _, errno := syscall.RawSyscall6(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)), flags, 0, 0)
		switch errno {
		case 0:
			return int(r), nil
		case syscall.EINTR:
			continue
		default:
			return 0, errno
		}
	}
}

// nonBlocking reports whether fd is in non-blocking mode (O_NONBLOCK), a
// mode of the open file that every process holding it shares and may
// change.
func nonBlocking(fd int) bool {
	fl, _, errno := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
	return errno == 0 && fl&syscall.O_NONBLOCK != 0
}

// pollFD is struct pollfd.
type pollFD struct {
	fd      int32
	events  int16
	revents int16
}

const pollOut = 0x4 // POLLOUT

// canWrite reports whether fd's buffer has room now (POLLOUT), asking
// with a ppoll(2) that does not wait.
func canWrite(fd int) bool {
	p := pollFD{fd: int32(fd), events: pollOut}
	var zero syscall.Timespec
	n, _, errno := syscall.RawSyscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&p)), 1, uintptr(unsafe.Pointer(&zero)), 0, 0, 0)
	return errno == 0 && n == 1 && p.revents&pollOut != 0
}
