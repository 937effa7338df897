//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64)

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// idleSessions is how many idle sessions TestIdleSessionCost starts.
const idleSessions = 50

// An idle session costs the plugin process one file descriptor of its
// own, its terminal's master (and the SDK's byte channel to the host), and
// no OS thread: the leader's exit is noticed on
// SIGCHLD, not by a pidfd or a blocked wait per session (performance issue
// 13: 1,000 idle sessions in at most 2 fds each, with room for the SDK's
// per-session channel, and at most 32 threads). Closing the sessions gives
// the descriptors back and reaps every leader.
func TestIdleSessionCost(t *testing.T) {
	ctx := testContext(t)
	env, plugin := loadHostPid(t)

	// One session first, so that what the first Spawn sets up once (the
	// poller's descriptors, a thread or two) is not counted per session.
	spawnReady(ctx, t, env, "warm-up")
	fds0, threads0, kids0 := countFds(t, plugin), statusValue(t, plugin, "Threads"), len(children(plugin))

	terms := make([]*sharedtest.Term, idleSessions)
	for i := range terms {
		terms[i] = spawnReady(ctx, t, env, fmt.Sprintf("idle-%d", i))
	}
	fds, threads := countFds(t, plugin), statusValue(t, plugin, "Threads")
	t.Logf("%d idle sessions: plugin fds %d → %d (%+.2f per session), threads %d → %d",
		idleSessions, fds0, fds, float64(fds-fds0)/idleSessions, threads0, threads)
	// Each session's byte channel to the host is one more.
	channels := 0
	for _, term := range terms {
		if shared.UsesByteChannel(term.PTY) {
			channels++
		}
	}
	if channels != idleSessions {
		t.Errorf("%d of %d sessions got a byte channel, want all", channels, idleSessions)
	}
	if fds-fds0 > idleSessions+channels {
		t.Errorf("the plugin holds %d more fds for %d idle sessions with %d byte channels, want at most one each besides its channel",
			fds-fds0, idleSessions, channels)
	}
	// A thread per session would be idleSessions more; the runtime may
	// start a few as the load changes.
	if threads-threads0 > 8 || threads > 32 {
		t.Errorf("the plugin runs %d threads with %d idle sessions (%d before), want at most 32 and no thread per session", threads, idleSessions, threads0)
	}

	var wg sync.WaitGroup
	for _, term := range terms {
		wg.Go(func() {
			if err := term.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if fds := countFds(t, plugin); fds > fds0 {
		t.Errorf("the plugin holds %d fds after closing the sessions, %d before they started", fds, fds0)
	}
	if kids := len(children(plugin)); kids > kids0 {
		t.Errorf("the plugin has %d children after closing the sessions, %d before: leaders left unreaped", kids, kids0)
	}
}

// Sessions that exit together, each with its own status, all get their
// own: one SIGCHLD may stand for many exits.
func TestManyExitsAtOnce(t *testing.T) {
	ctx := testContext(t)
	env := loadHost(t)
	const n = 30
	terms := make([]*sharedtest.Term, n)
	pids := make([]int, n)
	for i := range terms {
		p, err := env.Spawn(ctx, request(fmt.Sprintf("exit-%d", i), "/bin/sh", "-c", `echo "pid=$$;"; exec sleep 600`))
		if err != nil {
			t.Fatal(err)
		}
		terms[i] = sharedtest.NewTerm(t, p)
		pids[i], _ = strconv.Atoi(terms[i].Match(ctx, pidRe)[1])
	}
	sigs := []unix.Signal{unix.SIGTERM, unix.SIGKILL, unix.SIGINT}
	for i, pid := range pids {
		if err := unix.Kill(pid, sigs[i%len(sigs)]); err != nil {
			t.Fatalf("kill %d: %v", pid, err)
		}
	}
	for i, term := range terms {
		sig := sigs[i%len(sigs)]
		want := shared.ExitStatus{Code: 128 + int(sig), Signal: unix.SignalName(sig)}
		if st := term.Wait(ctx); st != want {
			t.Errorf("session %d: exit status %+v, want %+v", i, st, want)
		}
	}
}

// A leader that has exited stays a zombie until Close, however its exit
// was noticed, so its pid (the session's id) names no other process while
// Kill and Close signal the session; Close reaps it.
func TestLeaderZombieUntilClose(t *testing.T) {
	ctx := testContext(t)
	p, err := loadHost(t).Spawn(ctx, request("zombie", "/bin/sh", "-c", `echo "pid=$$;"; exit 5`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	pid, _ := strconv.Atoi(term.Match(ctx, pidRe)[1])
	if st := term.Wait(ctx); st != (shared.ExitStatus{Code: 5}) {
		t.Errorf("exit status %+v, want code 5", st)
	}
	if state, _, ok := procStat(t, pid); !ok || state != 'Z' {
		t.Fatalf("leader %d after Wait: state %q (present %v), want an unreaped zombie", pid, state, ok)
	}
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := procStat(t, pid); ok {
		t.Errorf("leader %d still there after Close, want it reaped", pid)
	}
}

// spawnReady starts an idle session and waits until its shell runs.
func spawnReady(ctx context.Context, t *testing.T, env shared.Environment, id string) *sharedtest.Term {
	t.Helper()
	p, err := env.Spawn(ctx, request(id, "/bin/sh", "-c", `echo ready; exec sleep 600`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "ready")
	return term
}

// loadHostPid returns the HOST environment of a freshly started plugin and
// the plugin process's pid.
func loadHostPid(t *testing.T) (shared.Environment, int) {
	t.Helper()
	before := children(os.Getpid())
	env := loadHost(t)
	var plugin []int
	for _, pid := range children(os.Getpid()) {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && filepath.Base(exe) == "ptyhost-plugin-host" && !slices.Contains(before, pid) {
			plugin = append(plugin, pid)
		}
	}
	if len(plugin) != 1 {
		t.Fatalf("new host plugin processes %v, want one", plugin)
	}
	return env, plugin[0]
}

// countFds returns how many file descriptors pid has open.
func countFds(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}
