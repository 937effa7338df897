//go:build unix && !linux

package shared

import "golang.org/x/sys/unix"

// masterCheck fails unless fd is a terminal: only Linux tells a master
// from the terminal's other side.
func masterCheck(fd int) error {
	_, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	return err
}
