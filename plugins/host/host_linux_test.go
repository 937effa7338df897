package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

var pidRe = regexp.MustCompile(`pid=(\d+);`)

// procStat returns a process's state and process group from /proc; ok is
// false if the process is gone.
func procStat(t *testing.T, pid int) (state byte, pgrp int, ok bool) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	f := bytes.Fields(b[bytes.LastIndexByte(b, ')')+1:])
	pgrp, _ = strconv.Atoi(string(f[2]))
	return f[0][0], pgrp, true
}

// dead reports whether pid has exited (a zombie waiting for its new parent
// to reap it counts: it runs nothing and holds nothing but its pid).
func dead(t *testing.T, pid int) bool {
	state, _, ok := procStat(t, pid)
	return !ok || state == 'Z' || state == 'X'
}

// Kill and Close reach a background job in a process group of its own (job
// control moves it there), not only the child's group.
func TestKillReachesBackgroundJobs(t *testing.T) {
	ctx := testContext(t)
	p, err := loadHost(t).Spawn(ctx, request("bg-kill", "/bin/sh", "-c", `set -m; sleep 1000 & echo "pid=$!;"; wait`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	pid, _ := strconv.Atoi(term.Match(ctx, pidRe)[1])
	if _, pgrp, ok := procStat(t, pid); !ok || pgrp != pid {
		t.Fatalf("background sleep %d: process group %d; the test wants it in its own group", pid, pgrp)
	}
	if err := p.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if st := term.Wait(ctx); st.Signal == "" {
		t.Errorf("exit status %+v after Kill, want a signal", st)
	}
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	if !dead(t, pid) {
		t.Errorf("background sleep %d survived Kill and Close", pid)
	}
}

// A child that exits while its background job holds the terminal ends the
// output after the drain grace, and Close kills the job. (The job ignores
// SIGHUP, which the kernel sends the foreground group when the session
// leader exits.)
func TestCloseKillsLeftovers(t *testing.T) {
	ctx := testContext(t)
	p, err := loadHost(t).Spawn(ctx, request("bg-close", "/bin/sh", "-c", `trap '' HUP; sleep 1000 & echo "pid=$!;"; echo done`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	pid, _ := strconv.Atoi(term.Match(ctx, pidRe)[1])
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v, want 0", st)
	}
	if dead(t, pid) {
		t.Fatalf("background sleep %d died before Close", pid)
	}
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	if !dead(t, pid) {
		t.Errorf("background sleep %d survived Close", pid)
	}
}

// Close without Kill ends a session whose processes ignore SIGHUP.
func TestCloseKillsStubbornProcesses(t *testing.T) {
	ctx := testContext(t)
	p, err := loadHost(t).Spawn(ctx, request("stubborn", "/bin/sh", "-c", `trap '' HUP; sleep 1000 & echo "pid=$!;"; wait`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	pid, _ := strconv.Atoi(term.Match(ctx, pidRe)[1])
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	if !dead(t, pid) {
		t.Errorf("sleep %d, which ignores SIGHUP, survived Close", pid)
	}
}

// When the host stops the plugin with sessions open, the plugin kills them
// (even what ignores SIGHUP) before it exits, and the host's reads fail with
// ErrPluginExited.
func TestPluginShutdownEndsSessions(t *testing.T) {
	ctx := testContext(t)
	plugins := loadPlugins(t)
	env, err := plugins.Environment(EnvironmentType)
	if err != nil {
		t.Fatal(err)
	}
	p, err := env.Spawn(ctx, request("shutdown", "/bin/sh", "-c", `trap '' HUP; sleep 1000 & echo "pid=$!;"; wait`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	pid, _ := strconv.Atoi(term.Match(ctx, pidRe)[1])
	plugins.Close()
	if err := term.Ended(ctx); !errors.Is(err, shared.ErrPluginExited) {
		t.Errorf("Read after the plugin stopped: %v, want ErrPluginExited", err)
	}
	if _, err := p.Wait(ctx); !errors.Is(err, shared.ErrPluginExited) {
		t.Errorf("Wait after the plugin stopped: %v, want ErrPluginExited", err)
	}
	if !dead(t, pid) {
		t.Errorf("sleep %d, which ignores SIGHUP, survived the plugin", pid)
	}
}

// Kill reaches a process whose parent exited while the session runs (the
// plugin adopts it as a child subreaper), in a group other than the
// child's, and the plugin reaps it once it is dead.
func TestKillReachesOrphans(t *testing.T) {
	ctx := testContext(t)
	p, err := loadHost(t).Spawn(ctx, request("orphan-kill", "/bin/sh", "-c", `set -m; (sleep 1000 & echo "pid=$!;"); sleep 1000`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	pid, _ := strconv.Atoi(term.Match(ctx, pidRe)[1])
	// Adopted: its parent is now the plugin, the test's child.
	waitFor(t, 10*time.Second, fmt.Sprintf("sleep %d adopted by the plugin", pid), func() bool {
		return parent(parent(pid)) == os.Getpid()
	})
	if err := p.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if st := term.Wait(ctx); st.Signal == "" {
		t.Errorf("exit status %+v after Kill, want a signal", st)
	}
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("orphaned sleep %d killed and reaped", pid), func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return err != nil
	})
}

// parent returns pid's parent, or 0 if pid is gone.
func parent(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := bytes.Fields(b[bytes.LastIndexByte(b, ')')+1:])
	ppid, _ := strconv.Atoi(string(f[1]))
	return ppid
}

// Kill and Close reach a process still in the session whose parent left
// it (the parent forked it into a group of its own, then called setsid):
// the walk of the session's tree goes on below a process that left.
func TestKillReachesChildOfEscapedProcess(t *testing.T) {
	ctx := testContext(t)
	// perl (perl-base, in every Debian) forks B into a group of its own,
	// then leaves the session itself, as a daemon does.
	const script = `$b = fork; if ($b == 0) { POSIX::setpgid(0, 0); exec "sleep", "1000" } ` +
		`print "pid=$b;esc=$$;\n"; POSIX::setsid() or die "setsid: $!"; exec "sleep", "1001"`
	p, err := loadHost(t).Spawn(ctx, request("escaped-parent", "/bin/sh", "-c", `perl -MPOSIX -e '`+script+`' & wait`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	m := term.Match(ctx, regexp.MustCompile(`pid=(\d+);esc=(\d+);`))
	pid, _ := strconv.Atoi(m[1])
	esc, _ := strconv.Atoi(m[2])
	killAtEnd(t, esc) // it left: not the session's to end
	killAtEnd(t, pid) // should the test fail
	waitFor(t, 10*time.Second, fmt.Sprintf("process %d to leave the session", esc), func() bool {
		return sessionOf(esc) == esc
	})
	if err := p.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	term.Wait(ctx)
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("sleep %d, still in the session, killed", pid), func() bool { return dead(t, pid) })
	if dead(t, esc) {
		t.Errorf("process %d, which left the session, was killed", esc)
	}
}

// sessionOf returns pid's session id, or 0 if pid is gone.
func sessionOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := bytes.Fields(b[bytes.LastIndexByte(b, ')')+1:])
	sid, _ := strconv.Atoi(string(f[3]))
	return sid
}

// A child that exits on its own leaves a background job: Close hangs it up
// (SIGHUP, which it may handle) before it kills what is left, as Kill does.
func TestCloseHangsUpLeftoversFirst(t *testing.T) {
	ctx := testContext(t)
	mark := t.TempDir() + "/hup"
	job := `trap "echo hup > ` + mark + `; exit" HUP; while :; do sleep 0.05; done`
	p, err := loadHost(t).Spawn(ctx, request("leftover-hup", "/bin/sh", "-c", `set -m; sh -c '`+job+`' & echo "pid=$!;"`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	pid, _ := strconv.Atoi(term.Match(ctx, pidRe)[1])
	killAtEnd(t, pid)
	term.Wait(ctx)
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
	if !dead(t, pid) {
		t.Errorf("background job %d survived Close", pid)
	}
	if b, err := os.ReadFile(mark); err != nil || string(b) != "hup\n" {
		t.Errorf("the job's SIGHUP handler wrote %q, %v; want hup: it was killed without a hangup", b, err)
	}
}

// A stopped child gets the hangup at once, not only SIGKILL after the
// grace: SIGCONT follows SIGHUP, as on a terminal's hangup.
func TestKillContinuesAStoppedChild(t *testing.T) {
	ctx := testContext(t)
	p, err := loadHost(t).Spawn(ctx, request("stopped", "/bin/sh", "-c", `echo "pid=$$;"; exec sleep 1000`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	pid, _ := strconv.Atoi(term.Match(ctx, pidRe)[1])
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("sleep %d stopped", pid), func() bool {
		state, _, _ := procStat(t, pid)
		return state == 'T'
	})
	if err := p.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if st := term.Wait(ctx); st.Signal != "SIGHUP" {
		t.Errorf("exit status %+v, want SIGHUP", st)
	}
	if err := term.Close(); err != nil {
		t.Fatal(err)
	}
}

// killAtEnd kills process pid when the test ends, if that very process
// still runs: its pidfd, opened now, tells it from whatever takes its pid
// once it is gone. With the whole suite running, pids come round again
// within minutes, and a kill by the pid alone could reach a process of
// another test.
func killAtEnd(t *testing.T, pid int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone already: nothing of it to kill
	}
	t.Cleanup(func() {
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) // ESRCH once it has exited
		_ = unix.Close(fd)
	})
}
