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
	if err := rc.Control(func(fd uintptr) { ierr = masterCheck(int(fd)) }); err != nil {
		return err
	}
	return ierr
}

// isMaster reports whether fd is a terminal (see checkMaster).
func isMaster(fd int) bool { return masterCheck(fd) == nil }

func masterCheck(fd int) error {
	_, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	return err
}
