//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64)

package main

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// Teardown at scale, through the real server and plugin. By default 250
// idle shells; to measure the figures of docs/performance.md:
//
//	PTYHOST_SCALE_SESSIONS=1000 go test -run TestTeardownAtScale -v ./plugins/host/
//
// which also times 100 DELETEs, 20 at a time, with the given number of
// sessions live, and requires their p50 to be at most 50 ms.
const scaleEnv = "PTYHOST_SCALE_SESSIONS"

// SIGTERM ends the server with every session torn down well within its
// --shutdown-timeout; each HOST kill used to scan all of /proc, so the
// time grew with sessions × processes.
func TestTeardownAtScale(t *testing.T) {
	n, measure := 250, false
	if v := os.Getenv(scaleEnv); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number of sessions", scaleEnv, v)
		}
		measure = true
	}
	const deletes, concurrent = 100, 20
	// The default run's timeout leaves room for a loaded machine; kills
	// that scan /proc took twice as long with 250 sessions.
	timeout := 3 * time.Second
	if measure {
		timeout = 10 * time.Second // the default --shutdown-timeout
	}
	srv := startTestServer(t, false, "--shutdown-timeout", timeout.String())
	plugin := pluginPid(t, srv)

	total := n
	if measure {
		total += deletes
	}
	ids := createMany(t, srv, total, "/bin/sh")
	leaders := sessionLeaders(t, plugin, total)
	if measure {
		t.Logf("%d sessions live; the plugin runs %d threads", total, statusValue(t, plugin, "Threads"))
	}

	if measure {
		lat := deleteMany(t, srv, ids[n:], concurrent)
		p50, p90 := lat[len(lat)/2], lat[len(lat)*9/10]
		t.Logf("%d DELETEs, %d at a time, at %d live sessions: p50 %v, p90 %v, max %v",
			len(lat), concurrent, n+deletes, p50.Round(time.Millisecond), p90.Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
		if p50 > 50*time.Millisecond {
			t.Errorf("DELETE p50 %v, want at most 50ms", p50)
		}
	}

	// A connection the client opened but never used counts as busy for
	// 5 s in http.Server.Shutdown, which the server waits for before it
	// hangs up the sessions; that is not what this measures.
	http.DefaultClient.CloseIdleConnections()
	start := time.Now()
	srv.Signal(t, syscall.SIGTERM)
	err := srv.Wait(t, 2*time.Minute)
	took := time.Since(start)
	t.Logf("shutdown with %d sessions: %v (--shutdown-timeout %v)", n, took.Round(time.Millisecond), timeout)
	if err != nil {
		t.Errorf("server exit: %v", err)
	}
	if took > timeout {
		t.Errorf("shutdown with %d sessions took %v, more than --shutdown-timeout %v", n, took, timeout)
	}
	if left := slices.DeleteFunc(append(leaders, plugin), func(pid int) bool { return !alive(pid) }); len(left) > 0 {
		t.Errorf("still running after shutdown: %d processes, such as %d", len(left), left[0])
	}
}

// createMany creates n sessions running argv, a few at a time, and returns
// their ids.
func createMany(t *testing.T, srv *e2etest.Server, n int, argv ...string) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				code, out, err := srv.Do("POST", "/api/v1/sessions", map[string]any{"environment_id": "host", "command": argv})
				if err == nil && code != http.StatusCreated {
					err = fmt.Errorf("create: %d %v", code, out)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					ids[i] = out["id"].(string)
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return ids
}

// deleteMany deletes the sessions, concurrent at a time, and returns each
// DELETE's latency, sorted.
func deleteMany(t *testing.T, srv *e2etest.Server, ids []string, concurrent int) []time.Duration {
	t.Helper()
	lat := make([]time.Duration, len(ids))
	errs := make(chan error, len(ids))
	next := make(chan int)
	var wg sync.WaitGroup
	for range concurrent {
		wg.Go(func() {
			for i := range next {
				start := time.Now()
				code, _, err := srv.Do("DELETE", "/api/v1/sessions/"+ids[i], nil)
				lat[i] = time.Since(start)
				if err == nil && code != http.StatusNoContent {
					err = fmt.Errorf("DELETE %s: %d", ids[i], code)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	slices.Sort(lat)
	return lat
}

// A short --shutdown-timeout shortens the grace that a session ignoring
// SIGHUP gets before SIGKILL (2 s otherwise, which alone overran it).
func TestShutdownTimeoutBoundsKillGrace(t *testing.T) {
	const timeout = time.Second
	srv := startTestServer(t, false, "--shutdown-timeout", timeout.String())
	createSession(t, srv, "/bin/sh", "-c", `trap '' HUP; sleep 600`)
	plugin := pluginPid(t, srv)
	var procs []int
	waitFor(t, 10*time.Second, "the session's shell and sleep", func() bool {
		procs = descendants(plugin)
		return len(procs) >= 2
	})
	start := time.Now()
	srv.Signal(t, syscall.SIGTERM)
	err := srv.Wait(t, 2*time.Minute)
	took := time.Since(start)
	if err != nil {
		t.Errorf("server exit: %v", err)
	}
	// Some slack over the timeout for a loaded machine, but less than the
	// full 2 s grace.
	if limit := timeout + 900*time.Millisecond; took > limit {
		t.Errorf("shutdown took %v with --shutdown-timeout %v, want at most %v", took, timeout, limit)
	}
	if slices.ContainsFunc(procs, alive) {
		t.Errorf("session processes %v: some still run after shutdown", procs)
	}
}
