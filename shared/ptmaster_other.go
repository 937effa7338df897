//go:build unix && !linux

package shared

import "golang.org/x/sys/unix"

// masterCheck fails unless fd is a terminal. It does not tell a master
// from the terminal's other side (the systems that can do so each have
// their own call), so the host asks for no terminal here
// (directInputHere); NewTerminal, which takes a file the plugin opened
// itself, uses it.
func masterCheck(fd int) error {
	_, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	return err
}
