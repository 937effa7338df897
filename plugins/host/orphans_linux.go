//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64)

package main

import (
	"errors"
	"fmt"
	"os"
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
// leaders.
//
// The leaders are the children Spawn started. The orphanage notices their
// exits too, on the same SIGCHLD, so that a session costs the plugin no
// file descriptor but its terminal and no thread (see leaders_linux.go).
//
// A nil *orphanage (the plugin's code run in another process, as in tests)
// adopts nothing: orphans go to init and out of reach; leaders are waited
// for by shared.WaitExit, a goroutine each.
type orphanage struct {
	// startMu is held shared from a leader's fork until it is registered,
	// and exclusively while orphans are reaped, so that the reaper never
	// takes the exit status of a leader it does not know yet.
	startMu sync.RWMutex

	mu sync.Mutex
	// mu protects the following.
	leaders map[int]*leader
	// suspects are the leaders the plugin has signalled to end and whose
	// exit is not noticed yet: every SIGCHLD checks them at once.
	suspects map[int]struct{}

	children string // the main thread's children file
}

// adoptOrphans makes the process a child subreaper and starts reaping the
// orphans it adopts and noticing the leaders' exits. Call it once, from
// main.
func adoptOrphans() (*orphanage, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become a child subreaper: %w", err)
	}
	pid := strconv.Itoa(os.Getpid())
	o := newOrphanage("/proc/" + pid + "/task/" + pid + "/children")
	// One buffered signal suffices: a SIGCHLD that arrives while watch
	// works is kept, and each round looks at every child, so exits the
	// signal coalesced are seen too.
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, unix.SIGCHLD)
	go o.watch(sigchld)
	return o, nil
}

// newOrphanage returns an orphanage whose orphans are listed in the
// children file.
func newOrphanage(children string) *orphanage {
	return &orphanage{
		leaders:  make(map[int]*leader),
		suspects: make(map[int]struct{}),
		children: children,
	}
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
