package main

import (
	"math"

	"golang.org/x/sys/unix"
)

// closeOnExecInherited marks every file descriptor above 2 close-on-exec
// (see serve): close_range(2) does it at once (Linux 5.11), else each
// descriptor /proc/self/fd lists.
func closeOnExecInherited() error {
	if unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC) == nil {
		return nil
	}
	return closeOnExecListed("/proc/self/fd")
}
