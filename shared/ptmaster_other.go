//go:build unix && !linux

package shared

import (
	"os"

	"golang.org/x/sys/unix"
)

// checkMaster fails unless f is a terminal; only Linux tells a master
// from the terminal's other side.
func checkMaster(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) {
		_, ierr = unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ)
	}); err != nil {
		return err
	}
	return ierr
}
