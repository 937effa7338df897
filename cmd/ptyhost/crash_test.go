package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/testbin"
)

// startServerProcess runs the ptyhost binary as a child process, so the
// test can kill it.
func startServerProcess(t *testing.T, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(testbin.Ptyhost(t), "serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir,
		"--plugin-dir", testbin.PluginDir(t, "host"), "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("server did not start: %v", err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "ptyhost: serving on ")
	if !ok {
		t.Fatalf("unexpected line %q", line)
	}
	return cmd, url
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

func postJSON(t *testing.T, url string, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 201 {
		t.Fatalf("POST %s: %d %v", url, resp.StatusCode, out)
	}
	return out
}

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}

// A server killed with SIGKILL leaves nothing running, and the next server
// on the same database reports its sessions as ended, not alive.
func TestKilledServerLeavesNothingAlive(t *testing.T) {
	dataDir := t.TempDir()
	server, url := startServerProcess(t, dataDir)
	postJSON(t, url+"/api/v1/sessions", `{"id":"orphan","environment_id":"host","command":["sleep","3600"]}`)

	plugins := children(server.Process.Pid)
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

	server.Process.Signal(syscall.SIGKILL)
	server.Wait()
	deadline = time.Now().Add(10 * time.Second)
	for alive(plugin) || alive(sleeper) {
		if time.Now().After(deadline) {
			t.Fatalf("after SIGKILL of the server: plugin alive %v, session process alive %v", alive(plugin), alive(sleeper))
		}
		time.Sleep(20 * time.Millisecond)
	}

	_, url = startServerProcess(t, dataDir)
	rec := getJSON(t, url+"/api/v1/sessions/orphan")
	if rec["status"] != "ERROR" || !strings.Contains(fmt.Sprint(rec["status_reason"]), "server_lost") {
		t.Errorf("after restart: %v", rec)
	}
}

// SIGTERM hangs up every session: clients get the last output, the exit
// and close code 1001; statuses are recorded; the server exits 0.
func TestGracefulShutdown(t *testing.T) {
	dataDir := t.TempDir()
	server, url := startServerProcess(t, dataDir)
	srv := &e2eServer{url: url}
	id := srv.create(t, map[string]any{"command": []string{"/bin/sh", "-c", "trap 'echo got-hup; exit 3' HUP; echo ready; while :; do sleep 1; done"}})
	c := srv.attach(t, id)
	c.waitOutput("ready")

	start := time.Now()
	server.Process.Signal(syscall.SIGTERM)
	exit := c.waitControl("exit")
	if !strings.Contains(string(c.out), "got-hup") || exit["code"] != 3.0 {
		t.Errorf("before exit %q; exit %v", tail(c.out), exit)
	}
	err := c.until(func() bool { return false })
	if !strings.Contains(fmt.Sprint(err), "1001") && !strings.Contains(fmt.Sprint(err), "going away") && !strings.Contains(fmt.Sprint(err), "Server shutting down") {
		t.Errorf("close: %v", err)
	}
	if err := waitExit(server); err != nil {
		t.Errorf("server exit: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %v", d)
	}

	_, url = startServerProcess(t, dataDir)
	rec := getJSON(t, url+"/api/v1/sessions/"+id)
	if rec["status"] != "TERMINATED" || rec["status_reason"] != "server_shutdown" || rec["exit_code"] != 3.0 {
		t.Errorf("after restart: %v", rec)
	}
}
