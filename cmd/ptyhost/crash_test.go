package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// startServerProcess runs the ptyhost binary as a child process, so the
// test can kill it.
func startServerProcess(t *testing.T, dataDir string) *e2etest.Server {
	t.Helper()
	return e2etest.Start(t, e2etest.Options{DataDir: dataDir})
}

// children returns the pids whose parent is pid.
func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces; split after ')'.
		fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie has exited.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// A server killed with SIGKILL, whose successor does not come within the
// orphan timeout, leaves nothing running: the plugin hangs its sessions up
// and exits; the next server reports them as lost, not alive.
func TestKilledServerLeavesNothingAlive(t *testing.T) {
	server := e2etest.Start(t, e2etest.Options{Args: []string{"--orphan-timeout", "1s"}})
	server.CreateSession(t, map[string]any{"id": "orphan", "command": []string{"sleep", "3600"}})

	plugins := children(server.Pid(t))
	if len(plugins) != 1 {
		t.Fatalf("server children = %v, want the host plugin", plugins)
	}
	plugin := plugins[0]
	var sleeper int
	deadline := time.Now().Add(10 * time.Second)
	for sleeper == 0 {
		if kids := children(plugin); len(kids) > 0 {
			sleeper = kids[0]
		} else if time.Now().After(deadline) {
			t.Fatal("the session's process never appeared")
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}

	server.Kill(t)
	deadline = time.Now().Add(15 * time.Second)
	for alive(plugin) || alive(sleeper) {
		if time.Now().After(deadline) {
			t.Fatalf("after SIGKILL of the server and the orphan timeout: plugin alive %v, session process alive %v", alive(plugin), alive(sleeper))
		}
		time.Sleep(20 * time.Millisecond)
	}

	next := server.Restart(t)
	rec := next.Session(t, "orphan")
	if rec["status"] != "ERROR" || !strings.Contains(fmt.Sprint(rec["status_reason"]), "server_lost") {
		t.Errorf("after restart: %v", rec)
	}
	// What the plugin logged while no server ran, its end included, is in
	// the next server's log.
	if log := next.Stderr(); !strings.Contains(log, "no host came back within the orphan timeout; hanging every session up and exiting") {
		t.Errorf("the next server's log does not have the plugin's last words:\n%s", log)
	}
}

// With --hang-up-on-stop (which e2etest passes by default), SIGTERM hangs
// up every session: clients get the last output, the exit and close code
// 1001; statuses are recorded; the server exits 0.
func TestGracefulShutdown(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServerProcess(t, dataDir)
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "trap 'echo got-hup; exit 3' HUP; echo ready; while :; do sleep 1; done"}})
	c := srv.Attach(t, id)
	c.WaitOutput("ready")

	start := time.Now()
	srv.Signal(t, syscall.SIGTERM)
	exit := c.WaitControl("exit")
	if !strings.Contains(string(c.Out), "got-hup") || exit.Code != 3 {
		t.Errorf("before exit %q; exit %v", tail(c.Out), exit)
	}
	err := c.WaitEnd()
	if code, _, _ := wsproto.CloseStatus(err); code != wsproto.CloseGoingAway && !strings.Contains(fmt.Sprint(err), "1001") && !strings.Contains(fmt.Sprint(err), "going away") && !strings.Contains(fmt.Sprint(err), "Server shutting down") {
		t.Errorf("close: %v", err)
	}
	if err := srv.Wait(t, 15*time.Second); err != nil {
		t.Errorf("server exit: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %v", d)
	}

	rec := srv.Restart(t).Session(t, id)
	if rec["status"] != "TERMINATED" || rec["status_reason"] != "server_shutdown" || rec["exit_code"] != 3.0 {
		t.Errorf("after restart: %v", rec)
	}
}
