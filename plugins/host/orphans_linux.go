//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64)

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// orphanage makes the plugin process a child subreaper: a session's
// process whose parent dies is re-parented to the plugin instead of init,
// so that Kill and Close still find it (sessionMembers), and the plugin
// reaps it when it exits.
//
// The kernel hands an orphan to the first live thread of the subreaper,
// its main thread, which a Go program never ends; so the orphans are the
// children listed in /proc/<pid>/task/<pid>/children that are not session
// leaders. The leaders are the children Spawn started; their waiters reap
// them.
//
// A nil *orphanage (the plugin's code run in another process, as in tests)
// adopts nothing: orphans go to init and out of reach.
type orphanage struct {
	// startMu is held shared from a leader's fork until it is registered,
	// and exclusively while orphans are reaped, so that the reaper never
	// takes the exit status of a leader it does not know yet.
	startMu sync.RWMutex

	mu sync.Mutex
	// mu protects the following.
	leaders map[int]struct{}

	children string // the main thread's children file
}

// adoptOrphans makes the process a child subreaper and starts reaping the
// orphans it adopts. Call it once, from main.
func adoptOrphans() (*orphanage, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become a child subreaper: %w", err)
	}
	pid := strconv.Itoa(os.Getpid())
	o := &orphanage{
		leaders:  make(map[int]struct{}),
		children: "/proc/" + pid + "/task/" + pid + "/children",
	}
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, unix.SIGCHLD)
	go func() {
		for range sigchld {
			o.reap()
		}
	}()
	return o, nil
}

// start starts cmd and registers it as a session leader.
func (o *orphanage) start(cmd *exec.Cmd) error {
	if o == nil {
		return cmd.Start()
	}
	o.startMu.RLock()
	defer o.startMu.RUnlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	o.mu.Lock()
	o.leaders[cmd.Process.Pid] = struct{}{}
	o.mu.Unlock()
	return nil
}

// forget unregisters a leader once it is reaped.
func (o *orphanage) forget(pid int) {
	if o == nil {
		return
	}
	o.mu.Lock()
	delete(o.leaders, pid)
	o.mu.Unlock()
}

// orphans returns the adopted processes, live or not: the plugin's
// children that are not session leaders.
func (o *orphanage) orphans() []int {
	if o == nil {
		return nil
	}
	pids := appendPids(nil, o.children)
	o.mu.Lock()
	defer o.mu.Unlock()
	out := pids[:0]
	for _, pid := range pids {
		if _, leader := o.leaders[pid]; !leader {
			out = append(out, pid)
		}
	}
	return out
}

// reap releases every adopted process that has exited.
func (o *orphanage) reap() {
	o.startMu.Lock()
	defer o.startMu.Unlock()
	for _, pid := range o.orphans() {
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG, nil)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
	}
}
