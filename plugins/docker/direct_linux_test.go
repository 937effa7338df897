package main

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
)

// dialHandoff connects to h as pty-init does.
func dialHandoff(t *testing.T, h *handoff) *net.UnixConn {
	t.Helper()
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: h.socket(), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// receiveAsync runs h.receive in the background.
func receiveAsync(ctx context.Context, h *handoff, exited <-chan struct{}) <-chan receiveResult {
	ch := make(chan receiveResult, 1)
	go func() {
		term, err := h.receive(ctx, exited)
		ch <- receiveResult{term, err}
	}()
	return ch
}

type receiveResult struct {
	term *shared.Terminal
	err  error
}

// A terminal handed over arrives working; the handoff leaves nothing.
func TestHandoffReceivesTerminal(t *testing.T) {
	h, err := newHandoff(t.TempDir(), handoffName(ownerID()))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(h.dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("handoff directory: %v, %v; want mode 0700", fi, err)
	}
	got := receiveAsync(t.Context(), h, nil)
	master, tty, err := shared.OpenPTY(shared.Size{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	if err := handOver(dialHandoff(t, h), master); err != nil {
		t.Fatalf("handOver: %v", err)
	}
	master.Close() // the plugin's copy must be enough
	r := <-got
	if r.err != nil {
		t.Fatalf("receive: %v", r.err)
	}
	defer r.term.Close()
	if _, err := tty.WriteString("from the container"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := r.term.Read(buf)
	if err != nil || string(buf[:n]) != "from the container" {
		t.Fatalf("Read: %q, %v", buf[:n], err)
	}
	h.close()
	if _, err := os.Stat(h.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("handoff directory after close: %v", err)
	}
}

// Whatever else comes over the socket is refused with a clear error.
func TestHandoffRefuses(t *testing.T) {
	pipe := func(t *testing.T) int {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		return int(r.Fd())
	}
	tests := []struct {
		name string
		send func(t *testing.T, conn *net.UnixConn)
		want string
		is   error
	}{
		{"not a terminal", func(t *testing.T, conn *net.UnixConn) {
			conn.WriteMsgUnix([]byte{1}, unix.UnixRights(pipe(t)), nil)
		}, "not a pseudo-terminal master", shared.ErrInvalidArgument},
		{"two fds", func(t *testing.T, conn *net.UnixConn) {
			conn.WriteMsgUnix([]byte{1}, unix.UnixRights(pipe(t), pipe(t)), nil)
		}, "sent 2 file descriptors", nil},
		{"no fd", func(t *testing.T, conn *net.UnixConn) {
			conn.Write([]byte{1})
		}, "sent 0 file descriptors", nil},
		{"hung up", func(t *testing.T, conn *net.UnixConn) {
			conn.Close()
		}, "reading the container's terminal", nil},
		{"command not found", func(t *testing.T, conn *net.UnixConn) {
			conn.Write([]byte(`Eexec: "nope": executable file not found in $PATH`))
		}, `exec: "nope": executable file not found in $PATH`, shared.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := newHandoff(t.TempDir(), handoffName(ownerID()))
			if err != nil {
				t.Fatal(err)
			}
			defer h.close()
			got := receiveAsync(t.Context(), h, nil)
			tt.send(t, dialHandoff(t, h))
			r := <-got
			if r.err == nil {
				r.term.Close()
				t.Fatal("receive succeeded")
			}
			if !strings.Contains(r.err.Error(), tt.want) || tt.is != nil && !errors.Is(r.err, tt.is) {
				t.Errorf("error %q, want it to say %q (and wrap %v)", r.err, tt.want, tt.is)
			}
		})
	}
}

// The wait for the terminal ends with the container, and with ctx.
func TestHandoffGivesUp(t *testing.T) {
	h, err := newHandoff(t.TempDir(), handoffName(ownerID()))
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	exited := make(chan struct{})
	got := receiveAsync(t.Context(), h, exited)
	close(exited)
	if r := <-got; r.err == nil || !strings.Contains(r.err.Error(), "exited before it handed over its terminal") {
		t.Errorf("after the exit: %v", r.err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	got = receiveAsync(ctx, h, nil)
	cancel()
	if r := <-got; !errors.Is(r.err, context.Canceled) {
		t.Errorf("after cancel: %v", r.err)
	}
}

// runInit runs the static plugin binary as pty-init on this machine (as in
// a container, without one) against a handoff; it returns the terminal and
// the running process.
func runInit(t *testing.T, argv ...string) (*shared.Terminal, *exec.Cmd) {
	t.Helper()
	h, err := newHandoff(t.TempDir(), handoffName(ownerID()))
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	cmd := exec.Command(pluginBinary(t), append([]string{initArg, h.socket(), "24", "80", "--"}, argv...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	exited := make(chan struct{})
	go func() {
		// Only for receive; the test reaps cmd itself (WNOWAIT).
		var info unix.Siginfo
		for errors.Is(unix.Waitid(unix.P_PID, cmd.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil), unix.EINTR) {
		}
		close(exited)
	}()
	term, err := h.receive(t.Context(), exited)
	if err != nil {
		return nil, cmd
	}
	t.Cleanup(func() { term.Close() })
	return term, cmd
}

// exitCode waits for cmd and returns its exit code.
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode()
}

// readAll reads the terminal to its end.
func readAll(t *testing.T, term *shared.Terminal) string {
	t.Helper()
	b, err := io.ReadAll(term)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pty-init runs the command on the terminal it hands over, as a session
// leader with the terminal as its controlling terminal, and exits with the
// command's code (128+n for a signal).
func TestPTYInit(t *testing.T) {
	term, cmd := runInit(t, "/bin/sh", "-c", `tty >/dev/null && echo on-a-tty; stty size; set -- $(cat /proc/$$/stat); [ "$6" = $$ ] && echo leader; exit 7`)
	if term == nil {
		t.Fatal("no terminal")
	}
	out := readAll(t, term)
	for _, want := range []string{"on-a-tty", "24 80", "leader"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if code := exitCode(t, cmd); code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}

	term, cmd = runInit(t, "/bin/sh", "-c", `kill -KILL $$`)
	readAll(t, term)
	if code := exitCode(t, cmd); code != 128+9 {
		t.Errorf("killed by SIGKILL: exit code %d, want 137", code)
	}
}

// The signals a container gets reach the command.
func TestPTYInitForwardsSignals(t *testing.T) {
	term, cmd := runInit(t, "/bin/sh", "-c", `trap 'echo got-term; exit 5' TERM; echo ready; while :; do sleep 0.05; done`)
	buf := make([]byte, 256)
	var out string
	for !strings.Contains(out, "ready") {
		n, err := term.Read(buf)
		if err != nil {
			t.Fatalf("output %q, then %v", out, err)
		}
		out += string(buf[:n])
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if rest := readAll(t, term); !strings.Contains(rest, "got-term") {
		t.Errorf("after SIGTERM: %q", rest)
	}
	if code := exitCode(t, cmd); code != 5 {
		t.Errorf("exit code %d, want 5", code)
	}
}

// A command that is not there fails the handoff with the reason, and no
// terminal is handed over; bad arguments are a usage error.
func TestPTYInitErrors(t *testing.T) {
	h, err := newHandoff(t.TempDir(), handoffName(ownerID()))
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	cmd := exec.Command(pluginBinary(t), initArg, h.socket(), "24", "80", "--", "/no/such/command")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_, err = h.receive(t.Context(), nil)
	if !errors.Is(err, shared.ErrInvalidArgument) || !strings.Contains(err.Error(), "/no/such/command") {
		t.Errorf("receive: %v", err)
	}
	if code := exitCode(t, cmd); code != 127 {
		t.Errorf("exit code %d, want 127", code)
	}

	for _, args := range [][]string{
		{filepath.Join(t.TempDir(), "sock"), "24", "80", "sh"},
		{filepath.Join(t.TempDir(), "sock"), "0", "80", "--", "sh"},
		{filepath.Join(t.TempDir(), "sock"), "24", "80", "--", "sh"}, // nobody listens
	} {
		out, err := exec.Command(pluginBinary(t), append([]string{initArg}, args...)...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 125 || !strings.Contains(string(out), "ptyhost pty-init:") {
			t.Errorf("pty-init %q: %v, %q; want exit 125 and a message", args, err, out)
		}
	}
}

// Only a statically linked binary runs in any image.
func TestCheckStatic(t *testing.T) {
	if err := checkStatic(pluginBinary(t)); err != nil {
		t.Errorf("the plugin as make build links it: %v", err)
	}
	text := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(text, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkStatic(text); err == nil {
		t.Error("a script passed")
	}
	// Debian's, as the tests' machines have it.
	if err := checkStatic("/bin/true"); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("/bin/true, dynamically linked: %v", err)
	}
}

// The handoff directories of plugin processes that are gone are removed;
// this process's, a live process's, a dead one's made lately, other
// users', those not named for their owner, symlinks and files are left
// alone.
func TestSweepHandoffs(t *testing.T) {
	parent := t.TempDir()
	mine, err := newHandoff(parent, handoffName(ownerID()))
	if err != nil {
		t.Fatal(err)
	}
	defer mine.close()
	start, err := strconv.ParseInt(procStart(os.Getpid()), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if want := handoffPrefix + strconv.FormatInt(int64(os.Getpid()), 36) + "." + strconv.FormatInt(start, 36) + "-"; !strings.HasPrefix(filepath.Base(mine.dir), want) {
		t.Fatalf("handoff directory %s, want it named %s…", mine.dir, want)
	}
	gone := staleHandoff(t, parent)
	goneName := handoffName(deadOwner(t))
	old := time.Now().Add(-time.Hour)

	keep := map[string]string{}
	mk := func(name string) string {
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, old, old); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	parentPid := os.Getppid()
	if procStart(parentPid) == "" {
		t.Fatalf("no start time for the test's parent process %d", parentPid)
	}
	keep["a live process's"] = mk(handoffName(thisMachine().ownerID(parentPid)) + "x")
	keep["one not named for its owner"] = mk(handoffPrefix + "8xq2")
	keep["a dead process's made lately"] = filepath.Join(parent, goneName+"new")
	if err := os.Mkdir(keep["a dead process's made lately"], 0o700); err != nil {
		t.Fatal(err)
	}
	keep["a symlink"] = filepath.Join(parent, goneName+"link")
	target := t.TempDir()
	if err := os.Symlink(target, keep["a symlink"]); err != nil {
		t.Fatal(err)
	}
	keep["a file"] = filepath.Join(parent, goneName+"file")
	if err := os.WriteFile(keep["a file"], nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// Another user's: root may make one.
		keep["another user's"] = mk(goneName + "other")
		if err := os.Chown(keep["another user's"], 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}

	sweepHandoffs(parent, hclog.NewNullLogger())
	if _, err := os.Lstat(gone); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead plugin's directory is still there: %v", err)
	}
	if _, err := os.Stat(mine.socket()); err != nil {
		t.Errorf("this plugin's socket: %v", err)
	}
	for what, p := range keep {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s (%s) was removed: %v", what, filepath.Base(p), err)
		}
	}
	if _, err := os.Stat(target); err != nil {
		t.Errorf("the symlink's target was removed: %v", err)
	}
}
