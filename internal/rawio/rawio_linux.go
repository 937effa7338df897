package rawio

import (
	"syscall"
	"unsafe"
)

// Read makes one read(2) of fd into p, repeated if a signal interrupts it,
// without telling the runtime: fd must be non-blocking.
func Read(fd int, p []byte) (int, error) {
	return rawCall(syscall.SYS_READ, fd, p)
}

// Write makes one write(2) of p to fd, as Read does.
func Write(fd int, p []byte) (int, error) {
	return rawCall(syscall.SYS_WRITE, fd, p)
}

func rawCall(trap uintptr, fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	for {
		r, _, errno := syscall.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
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
