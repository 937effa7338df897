//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64)

package main

// Tests through the real server binary (`ptyhost serve`) and the real host
// plugin binary: teardown at scale, signal dispositions under nohup, and
// what is left after the server is killed.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/internal/testbin"
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

// testServer is a `ptyhost serve` process.
type testServer struct {
	cmd *exec.Cmd
	url string
}

// startTestServer starts the ptyhost binary with the host plugin, through
// the signal wrapper if wrap is set; the test's cleanup kills it.
func startTestServer(t *testing.T, wrap bool, extra ...string) *testServer {
	t.Helper()
	args := append([]string{testbin.Ptyhost(t), "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--plugin-dir", testbin.PluginDir(t, "host"), "--log-level", "error"}, extra...)
	cmd := exec.Command(args[0], args[1:]...)
	if wrap {
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd = exec.Command(self, args...)
		cmd.Env = append(os.Environ(), wrapEnv+"=1")
	}
	cmd.Stderr = os.Stderr
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
		t.Fatalf("unexpected first line %q", line)
	}
	return &testServer{cmd: cmd, url: url}
}

// do sends a request with a JSON body (if any) and returns the status.
func (s *testServer) do(method, path string, body any, out any) (int, error) {
	var r *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	} else {
		r = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, s.url+path, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode, nil
}

// create creates a HOST session running argv and returns its id.
func (s *testServer) create(t *testing.T, argv ...string) string {
	t.Helper()
	var out map[string]any
	code, err := s.do("POST", "/api/v1/sessions", map[string]any{"environment_id": "host", "command": argv}, &out)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create: %d %v %v", code, err, out)
	}
	return out["id"].(string)
}

// plugin returns the pid of the server's plugin process.
func (s *testServer) plugin(t *testing.T) int {
	t.Helper()
	kids := children(s.cmd.Process.Pid)
	if len(kids) != 1 {
		t.Fatalf("server children %v, want the host plugin only", kids)
	}
	return kids[0]
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	if m := statusMask(t, srv.cmd.Process.Pid, "SigIgn"); m&(1<<(unix.SIGHUP-1)) == 0 {
		t.Fatalf("the wrapper did not leave SIGHUP ignored in the server (SigIgn %x)", m)
	}
	srv.create(t, "sleep", "600")
	leader := sessionLeaders(t, srv.plugin(t), 1)[0]
	if m := statusMask(t, leader, "SigIgn"); m != 0 {
		t.Errorf("session SigIgn = %x, want 0", m)
	}
	if m := statusMask(t, leader, "SigBlk"); m != 0 {
		t.Errorf("session SigBlk = %x, want 0", m)
	}
}

// After SIGKILL of the server, the plugin ends its sessions with SIGHUP,
// then SIGKILL, before it exits: a session that ignores SIGHUP does not
// outlive it, nor does its background job.
func TestServerKilledLeavesNoSession(t *testing.T) {
	srv := startTestServer(t, false)
	srv.create(t, "/bin/sh", "-c", `trap '' HUP; sleep 600 & sleep 600`)
	plugin := srv.plugin(t)
	sessionLeaders(t, plugin, 1)
	var procs []int
	waitFor(t, 10*time.Second, "the session's shell and both sleeps", func() bool {
		procs = descendants(plugin)
		return len(procs) >= 3
	})
	srv.cmd.Process.Signal(syscall.SIGKILL)
	srv.cmd.Wait()
	waitFor(t, 10*time.Second, "the plugin and every session process gone", func() bool {
		return !slices.ContainsFunc(append(procs, plugin), alive)
	})
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.live()
}
