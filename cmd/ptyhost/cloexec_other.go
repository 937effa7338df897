//go:build unix && !linux

package main

// closeOnExecInherited marks every file descriptor above 2 close-on-exec
// (see serve): each one /dev/fd lists.
func closeOnExecInherited() error {
	return closeOnExecListed("/dev/fd")
}
