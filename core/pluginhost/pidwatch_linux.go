package pluginhost

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// pidWatch watches a process by its pid, whether it is our child or not:
// a plugin process a previous server started is not. On Linux it holds a
// pidfd, which says for certain whether that very process has exited even
// once its pid could be reused, and waits on it with poll. The watch can
// be stopped without the process exiting (a server that leaves its
// plugins running stops watching them), so that no goroutine is left
// blocked in a system call.
type pidWatch struct {
	pid    int
	exited chan struct{} // closed when the process has exited
	done   chan struct{} // closed when the watching goroutine has ended
	wakeW  int           // written by stop to wake the poll

	stopOnce sync.Once

	mu sync.Mutex
	// mu protects the following.
	pidfd int // -1 once closed
	gone  bool
}

// watchPID starts watching pid. A process that does not exist is an
// error wrapping syscall.ESRCH; a kernel without pidfds (before 5.3) is
// another error.
func watchPID(pid int) (*pidWatch, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("pid %d: %w", pid, syscall.ESRCH)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	var wake [2]int
	if err := unix.Pipe2(wake[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		_ = unix.Close(pidfd)
		return nil, fmt.Errorf("watching pid %d: %w", pid, err)
	}
	w := &pidWatch{pid: pid, pidfd: pidfd, wakeW: wake[1], exited: make(chan struct{}), done: make(chan struct{})}
	go w.run(wake[0])
	return w, nil
}

// run polls the pidfd, and the pipe stop wakes it through, until either
// is readable.
func (w *pidWatch) run(wakeR int) {
	defer close(w.done)
	defer unix.Close(wakeR)
	fds := []unix.PollFd{{Fd: int32(w.pidfd), Events: unix.POLLIN}, {Fd: int32(wakeR), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || fds[0].Revents != 0 || fds[1].Revents != 0 {
			break
		}
	}
	w.mu.Lock()
	// A pidfd is readable once its process has exited; an error of poll
	// (which cannot happen with these two descriptors) is taken as an
	// exit too, so that nobody waits forever.
	exited := fds[0].Revents != 0 || fds[1].Revents == 0
	if exited {
		w.gone = true
	}
	w.mu.Unlock()
	if exited {
		close(w.exited)
	}
}

// aliveLocked reports whether the process has not exited and is still
// watched; w.mu must be held. It asks the pidfd itself, not only the watching goroutine, which may
// not have run yet.
func (w *pidWatch) aliveLocked() bool {
	if w.gone || w.pidfd < 0 {
		return false
	}
	fds := []unix.PollFd{{Fd: int32(w.pidfd), Events: unix.POLLIN}}
	for {
		n, err := pollPidfd(fds, 0)
		// Even a poll that does not wait fails with EINTR when a signal
		// comes in meanwhile (the runtime's preemption, a child's exit),
		// which says nothing of the process: taken for an exit, it had a
		// server that reattached find its sessions' plugin gone, and one
		// that let it go wait for it to exit.
		if !errors.Is(err, unix.EINTR) {
			return err == nil && n == 0
		}
	}
}

// pollPidfd is unix.Poll; tests interrupt it.
var pollPidfd = unix.Poll

// alive reports whether the process has not exited.
func (w *pidWatch) alive() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.aliveLocked()
}

// killGroup sends SIGKILL to the process group whose id is the watched
// pid (a plugin leads its own group), while the process is alive: the
// pidfd tells that the pid has not been reused by then.
func (w *pidWatch) killGroup() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.aliveLocked() {
		return nil
	}
	return killProcessGroup(w.pid)
}

// reap collects the exit status of a process that was our child (a
// plugin a previous Plugins of this process started), so that it does
// not stay a zombie; for any other process it does nothing.
func (w *pidWatch) reap() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pidfd < 0 {
		return
	}
	var info unix.Siginfo
	_ = unix.Waitid(unix.P_PIDFD, w.pidfd, &info, unix.WEXITED|unix.WNOHANG, nil)
}

// stop ends the watch: exited is closed only if the process exited
// before. It waits for the watching goroutine and releases the pidfd.
func (w *pidWatch) stop() {
	w.stopOnce.Do(func() {
		_, _ = unix.Write(w.wakeW, []byte{0})
		<-w.done
		_ = unix.Close(w.wakeW)
		w.mu.Lock()
		_ = unix.Close(w.pidfd)
		w.pidfd = -1
		w.mu.Unlock()
	})
}

// pidfdsWork reports whether this kernel has pidfd_open (Linux 5.3) and
// lets this process use it.
func pidfdsWork() bool {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return false
	}
	_ = unix.Close(fd)
	return true
}
