package shared

import "golang.org/x/sys/unix"

// masterCheck fails unless fd is a pseudo-terminal's master: only a master
// has a terminal number (TIOCGPTN).
func masterCheck(fd int) error {
	_, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	return err
}
