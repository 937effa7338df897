package shared

import (
	"os"

	"golang.org/x/sys/unix"
)

// checkMaster fails unless f is a pseudo-terminal's master: only a master
// has a terminal number (TIOCGPTN).
func checkMaster(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		_, ierr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
	}); err != nil {
		return err
	}
	return ierr
}
