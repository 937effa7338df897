package main

import (
	"errors"

	"golang.org/x/sys/unix"
)

// waitProcess waits until the process pid has exited (true) or stop is
// closed (false). The process is not the plugin's child (tmux forked it),
// so it is watched through a pidfd, which becomes readable when it exits.
// A pid that is gone already counts as exited.
func waitProcess(pid int, stop <-chan struct{}) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	if err != nil {
		return pollProcess(pid, stop)
	}
	defer unix.Close(fd)
	// A pipe that stop closes wakes the poll.
	var wake [2]int
	if err := unix.Pipe2(wake[:], unix.O_CLOEXEC); err != nil {
		return pollProcess(pid, stop)
	}
	defer unix.Close(wake[0])
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-stop:
		case <-done:
		}
		unix.Close(wake[1])
	}()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(wake[0]), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return pollProcess(pid, stop)
		}
		return fds[0].Revents != 0
	}
}
