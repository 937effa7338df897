//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64)

package main

// Tests through the real server binary (`ptyhost serve`) and the real host
// plugin binary: teardown at scale, signal dispositions under nohup, and
// what is left after the server is killed.

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
	"golang.org/x/sys/unix"
)

// wrapEnv makes the test binary a wrapper (see wrapMain): it execs its
// arguments with SIGHUP ignored and SIGHUP and SIGUSR1 blocked, as a
// parent under nohup (or worse) would.
const wrapEnv = "PTYHOST_TEST_WRAP_SIGNALS"

// wrapMain is the wrapper mode of the test binary; TestMain calls it first.
func wrapMain() {
	if os.Getenv(wrapEnv) == "" {
		return
	}
	os.Unsetenv(wrapEnv)
	runtime.LockOSThread()
	signal.Ignore(syscall.SIGHUP)
	var set unix.Sigset_t
	for _, sig := range []unix.Signal{unix.SIGHUP, unix.SIGUSR1} {
		set.Val[(sig-1)/64] |= 1 << ((uint(sig) - 1) % 64)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil); err != nil {
		fmt.Fprintln(os.Stderr, "wrapper:", err)
		os.Exit(2)
	}
	err := syscall.Exec(os.Args[1], os.Args[1:], os.Environ())
	fmt.Fprintln(os.Stderr, "wrapper:", err)
	os.Exit(2)
}

// startTestServer starts the ptyhost binary with the host plugin, through
// the signal wrapper if wrap is set.
func startTestServer(t *testing.T, wrap bool, extra ...string) *e2etest.Server {
	t.Helper()
	o := e2etest.Options{LogLevel: "error", Args: extra}
	if wrap {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		o.Wrapper, o.Env = []string{self}, []string{wrapEnv + "=1"}
	}
	return e2etest.Start(t, o)
}

// createSession creates a HOST session running argv and returns its id.
func createSession(t *testing.T, srv *e2etest.Server, argv ...string) string {
	t.Helper()
	return srv.CreateSession(t, map[string]any{"environment_id": "host", "command": argv})
}

// pluginPid returns the pid of the server's plugin process.
func pluginPid(t *testing.T, srv *e2etest.Server) int {
	t.Helper()
	kids := children(srv.Pid(t))
	if len(kids) != 1 {
		t.Fatalf("server children %v, want the host plugin only", kids)
	}
	return kids[0]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	e2etest.Eventually(t, timeout, what, cond, nil)
}

// sessionLeaders waits for n session processes under the plugin and
// returns them.
func sessionLeaders(t *testing.T, plugin, n int) []int {
	t.Helper()
	var kids []int
	waitFor(t, 30*time.Second, fmt.Sprintf("%d session processes", n), func() bool {
		kids = children(plugin)
		return len(kids) >= n
	})
	return kids
}

// descendants returns pid's live descendants.
func descendants(pid int) []int {
	var out []int
	queue := children(pid)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if st, ok := readStat(p); ok && st.live() {
			out = append(out, p)
		}
		queue = append(queue, children(p)...)
	}
	return out
}

// statusMask returns a signal mask field ("SigIgn", "SigBlk") of
// /proc/<pid>/status.
func statusMask(t *testing.T, pid int, field string) uint64 {
	t.Helper()
	m, err := strconv.ParseUint(statusField(t, pid, field), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// statusValue returns a decimal field ("Threads") of /proc/<pid>/status.
func statusValue(t *testing.T, pid int, field string) int {
	t.Helper()
	n, err := strconv.Atoi(statusField(t, pid, field))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// statusField returns a field of /proc/<pid>/status.
func statusField(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return ""
}

// A server started with SIGHUP ignored and signals blocked (as under nohup)
// starts sessions with default dispositions and an empty mask, so DELETE
// ends a shell with SIGHUP.
func TestSessionsStartWithDefaultSignals(t *testing.T) {
	srv := startTestServer(t, true)
	if m := statusMask(t, srv.Pid(t), "SigIgn"); m&(1<<(unix.SIGHUP-1)) == 0 {
		t.Fatalf("the wrapper did not leave SIGHUP ignored in the server (SigIgn %x)", m)
	}
	createSession(t, srv, "sleep", "600")
	leader := sessionLeaders(t, pluginPid(t, srv), 1)[0]
	if m := statusMask(t, leader, "SigIgn"); m != 0 {
		t.Errorf("session SigIgn = %x, want 0", m)
	}
	if m := statusMask(t, leader, "SigBlk"); m != 0 {
		t.Errorf("session SigBlk = %x, want 0", m)
	}
}

// After SIGKILL of the server and no server back within the orphan
// timeout, the plugin ends its sessions with SIGHUP, then SIGKILL, before
// it exits: a session that ignores SIGHUP does not outlive it, nor does its
// background job.
func TestServerKilledLeavesNoSession(t *testing.T) {
	srv := startTestServer(t, false, "--orphan-timeout", "1s")
	createSession(t, srv, "/bin/sh", "-c", `trap '' HUP; sleep 600 & sleep 600`)
	plugin := pluginPid(t, srv)
	sessionLeaders(t, plugin, 1)
	var procs []int
	waitFor(t, 10*time.Second, "the session's shell and both sleeps", func() bool {
		procs = descendants(plugin)
		return len(procs) >= 3
	})
	srv.Kill(t)
	waitFor(t, 10*time.Second, "the plugin and every session process gone", func() bool {
		return !slices.ContainsFunc(append(procs, plugin), alive)
	})
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.live()
}
