//go:build !linux

package pluginhost

import (
	"fmt"
	"sync"
	"syscall"
	"time"
)

// pidWatchInterval is how often a pidWatch without pidfds looks for its
// process.
const pidWatchInterval = 100 * time.Millisecond

// pidWatch watches a process by its pid, whether it is our child or not.
// Without Linux's pidfds it polls for the pid's existence, which cannot
// tell the process from a later one that reused its pid: on these
// systems a reattached plugin's death may be noticed late, and its group
// is killed only while its pid exists. The watch can be stopped without
// the process exiting.
type pidWatch struct {
	pid    int
	exited chan struct{} // closed when the process has exited
	done   chan struct{} // closed when the watching goroutine has ended
	stopC  chan struct{}

	stopOnce sync.Once

	mu sync.Mutex
	// mu protects the following.
	gone    bool
	stopped bool
}

// watchPID starts watching pid. A process that does not exist is an
// error wrapping syscall.ESRCH.
func watchPID(pid int) (*pidWatch, error) {
	if pid <= 0 || !processAlive(pid) {
		return nil, fmt.Errorf("pid %d: %w", pid, syscall.ESRCH)
	}
	w := &pidWatch{pid: pid, exited: make(chan struct{}), done: make(chan struct{}), stopC: make(chan struct{})}
	go w.run()
	return w, nil
}

func (w *pidWatch) run() {
	defer close(w.done)
	tick := time.NewTicker(pidWatchInterval)
	defer tick.Stop()
	for {
		select {
		case <-w.stopC:
			return
		case <-tick.C:
		}
		if !processAlive(w.pid) {
			w.mu.Lock()
			w.gone = true
			w.mu.Unlock()
			close(w.exited)
			return
		}
	}
}

// alive reports whether the process exists and is still watched.
func (w *pidWatch) alive() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.gone && !w.stopped && processAlive(w.pid)
}

// killGroup sends SIGKILL to the process group whose id is the watched
// pid while the process is alive.
func (w *pidWatch) killGroup() error {
	if !w.alive() {
		return nil
	}
	return killProcessGroup(w.pid)
}

// reap does nothing: without pidfds a former child cannot be told from a
// process that reused its pid.
func (w *pidWatch) reap() {}

// stop ends the watch: exited is closed only if the process exited
// before. It waits for the watching goroutine.
func (w *pidWatch) stop() {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.stopped = true
		w.mu.Unlock()
		close(w.stopC)
		<-w.done
	})
}

// pidfdsWork is false outside Linux: a process cannot be let go of
// without waiting for it (see waitExited).
func pidfdsWork() bool { return false }
