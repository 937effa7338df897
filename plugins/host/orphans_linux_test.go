//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64)

package main

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
)

// exits records the exits an orphanage reports, by pid.
type exits struct {
	mu sync.Mutex
	// mu protects the following.
	got map[int][]shared.ExitStatus
}

// callback returns the exited func for pid.
func (e *exits) callback(t *testing.T, pid *int) func(shared.ExitStatus, error) {
	return func(st shared.ExitStatus, err error) {
		if err != nil {
			t.Errorf("exit of %d: %v", *pid, err)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		e.got[*pid] = append(e.got[*pid], st)
	}
}

// of returns what was reported for pid.
func (e *exits) of(pid int) []shared.ExitStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got[pid]
}

// testOrphanage is an orphanage of the test process that has not made it a
// subreaper and handles no SIGCHLD: the test calls checkLeaders itself.
func testOrphanage() *orphanage {
	return newOrphanage("/dev/null")
}

// startExiting starts sh -c script and waits until it has exited, left a
// zombie.
func startExiting(t *testing.T, script string) int {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()
	waitFor(t, 10*time.Second, fmt.Sprintf("process %d a zombie", pid), func() bool {
		state, _, ok := procStat(t, pid)
		return ok && state == 'Z'
	})
	return pid
}

// One check of all leaders reports every exit since the last check, each
// with its own status, exactly once, and leaves the leaders zombies until
// reapLeader: one SIGCHLD may stand for many exits, and a leader that
// exited before it was registered is seen by the check after.
func TestCheckLeaders(t *testing.T) {
	o := testOrphanage()
	e := &exits{got: map[int][]shared.ExitStatus{}}
	tests := []struct {
		script string
		want   shared.ExitStatus
	}{
		{"exit 0", shared.ExitStatus{Code: 0}},
		{"exit 7", shared.ExitStatus{Code: 7}},
		{"kill -TERM $$", shared.ExitStatus{Code: 143, Signal: "SIGTERM"}},
		{"kill -KILL $$", shared.ExitStatus{Code: 137, Signal: "SIGKILL"}},
	}
	pids := make([]int, len(tests))
	for i, tt := range tests {
		// Exited before it is registered, as a fast child may.
		pids[i] = startExiting(t, tt.script)
		o.mu.Lock()
		o.leaders[pids[i]] = &leader{exited: e.callback(t, &pids[i])}
		o.mu.Unlock()
	}
	// A leader that still runs is not reported.
	running := exec.Command("/bin/sh", "-c", "read x; exit 4")
	stdin, err := running.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var runPid int
	runPid, err = o.start(running, e.callback(t, &runPid))
	if err != nil {
		t.Fatal(err)
	}

	o.checkLeaders()
	o.checkLeaders() // nothing new
	for i, tt := range tests {
		if got := e.of(pids[i]); len(got) != 1 || got[0] != tt.want {
			t.Errorf("%q: reported %+v, want %+v once", tt.script, got, tt.want)
		}
		if state, _, ok := procStat(t, pids[i]); !ok || state != 'Z' {
			t.Errorf("%q: process %d state %q (present %v) after the check, want a zombie", tt.script, pids[i], state, ok)
		}
	}
	if got := e.of(runPid); len(got) != 0 {
		t.Errorf("a running leader was reported exited: %+v", got)
	}

	for _, pid := range pids {
		o.reapLeader(nil, pid)
		if _, _, ok := procStat(t, pid); ok {
			t.Errorf("process %d still there after reapLeader", pid)
		}
	}
	stdin.Close()
	waitFor(t, 10*time.Second, "the reading leader exited", func() bool {
		state, _, ok := procStat(t, runPid)
		return ok && state == 'Z'
	})
	o.checkLeaders()
	if got := e.of(runPid); len(got) != 1 || got[0] != (shared.ExitStatus{Code: 4}) {
		t.Errorf("the reading leader: reported %+v, want code 4 once", got)
	}
	o.reapLeader(running, runPid)
	if len(o.leaders) != 0 {
		t.Errorf("leaders left registered: %v", o.leaders)
	}
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, runPid, &info, unix.WEXITED|unix.WNOHANG, nil); !errors.Is(err, unix.ECHILD) {
		t.Errorf("waitid(%d) after reapLeader: %v, want ECHILD", runPid, err)
	}
}

// The exit of a leader the plugin signalled (a suspect) is noticed by the
// check every SIGCHLD runs; that of another leader waits for the full
// scan.
func TestCheckSuspects(t *testing.T) {
	o := testOrphanage()
	e := &exits{got: map[int][]shared.ExitStatus{}}
	pids := make([]int, 2)
	stdins := make([]io.Closer, 2)
	for i := range pids {
		cmd := exec.Command("/bin/sh", "-c", fmt.Sprintf("read x; exit %d", 10+i))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdins[i] = stdin
		if pids[i], err = o.start(cmd, e.callback(t, &pids[i])); err != nil {
			t.Fatal(err)
		}
	}
	suspect, other := pids[0], pids[1]
	o.suspect(suspect)
	for i, stdin := range stdins {
		stdin.Close()
		waitFor(t, 10*time.Second, fmt.Sprintf("leader %d exited", pids[i]), func() bool {
			state, _, ok := procStat(t, pids[i])
			return ok && state == 'Z'
		})
	}

	o.checkSuspects()
	if got := e.of(suspect); len(got) != 1 || got[0] != (shared.ExitStatus{Code: 10}) {
		t.Errorf("suspect: reported %+v, want code 10 once", got)
	}
	if got := e.of(other); len(got) != 0 {
		t.Errorf("a leader not suspected was reported by checkSuspects: %+v", got)
	}
	if len(o.suspects) != 0 {
		t.Errorf("suspects %v left after the exit was noticed", o.suspects)
	}
	o.checkLeaders()
	if got := e.of(other); len(got) != 1 || got[0] != (shared.ExitStatus{Code: 11}) {
		t.Errorf("other: reported %+v, want code 11 once", got)
	}
	if got := e.of(suspect); len(got) != 1 {
		t.Errorf("suspect reported %d times, want once", len(got))
	}
	for _, pid := range pids {
		o.reapLeader(nil, pid)
	}
}
