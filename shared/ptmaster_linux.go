package shared

import (
	"os"

	"golang.org/x/sys/unix"
)

// checkMaster fails unless f is a pseudo-terminal's master.
func checkMaster(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = masterCheck(int(fd)) }); err != nil {
		return err
	}
	return ierr
}

// isMaster reports whether fd is a pseudo-terminal's master.
func isMaster(fd int) bool { return masterCheck(fd) == nil }

// masterCheck fails unless fd is a pseudo-terminal's master: only a master
// has a terminal number (TIOCGPTN).
func masterCheck(fd int) error {
	_, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	return err
}
