//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// File descriptors the server inherited without close-on-exec — `(exec
// 7<secret.txt; ptyhost serve)`, a supervisor's leftovers — would pass on
// to every plugin process it starts, and from them to every session's
// program. serve marks them all close-on-exec before it starts anything
// (closeOnExecInherited, per platform): the processes it starts get the
// descriptors it gives them (os/exec's Stdin, Stdout, Stderr and
// ExtraFiles), and no other. Go opens its own files close-on-exec anyway.

// closeOnExecListed marks close-on-exec every descriptor above 2 that the
// directory dir (/proc/self/fd, /dev/fd) lists.
func closeOnExecListed(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("listing the open file descriptors: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		// The descriptor that read dir is closed by now: EBADF.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("marking file descriptor %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}
