package main

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// processPoll is how often pollProcess looks.
const processPoll = 100 * time.Millisecond

// pollProcess waits until the process pid has exited (true) or stop is
// closed (false), looking every processPoll: the fallback where no pidfd
// can be had. A zombie (exited, not yet reaped by tmux) still counts as
// running until tmux reaps it.
func pollProcess(pid int, stop <-chan struct{}) bool {
	tick := time.NewTicker(processPoll)
	defer tick.Stop()
	for {
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			return true
		}
		select {
		case <-tick.C:
		case <-stop:
			return false
		}
	}
}
