//go:build unix

package shared_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// commandEnv runs each session's command with shared.StartCommand, as
// examples/plugin-minimal does.
type commandEnv struct{}

func (commandEnv) Info(context.Context) (shared.Info, error) {
	return shared.Info{Name: "command", Version: "0.0.1", Types: []string{"COMMAND"}, Capabilities: []string{shared.CapResize}}, nil
}

func (commandEnv) Spawn(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	if err := shared.DecodeConfig(req.Config, &struct{}{}); err != nil {
		return nil, err
	}
	dir, err := shared.WorkingDir(req.Dir)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(req.Command[0], req.Command[1:]...)
	cmd.Dir = dir
	cmd.Env = shared.ChildEnvWithout(os.Environ(), req.UnsetEnv, map[string]string{"TERM": "xterm"}, req.Env)
	return shared.StartCommand(cmd, req.Size)
}

func TestStartCommandConformance(t *testing.T) {
	sharedtest.Run(t, sharedtest.Serve(t, commandEnv{}), sharedtest.Config{
		BadConfig: []byte(`{"x": 1}`),
		Dir:       t.TempDir(),
	})
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A background job that holds the terminal open (and ignores the SIGHUP
// the kernel sends when the session leader exits) does not keep the
// session from ending: Read returns the output, then io.EOF soon after the
// child exits; Close ends the job.
func TestStartCommandDrainsPastABackgroundJob(t *testing.T) {
	ctx := testContext(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	p, err := shared.StartCommand(exec.Command("/bin/sh", "-c", `trap '' HUP; sleep 60 & echo $! > "$0"; printf bye`, pidFile), shared.Size{})
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "bye")
	out := term.ReadAll(ctx) // fails unless Read ends with io.EOF
	if !strings.HasSuffix(string(out), "bye") {
		t.Errorf("output %q", out)
	}
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v", st)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !running(pid) {
		t.Fatalf("the background job %d is gone before Close", pid)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for running(pid) {
		select {
		case <-ctx.Done():
			t.Fatalf("the background job %d runs on after Close", pid)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// The child stays unreaped from its exit until Close, so that Close's
// kill of its process group cannot reach another process that got its pid.
func TestStartCommandKeepsItsPidUntilClose(t *testing.T) {
	if runtime.GOOS != "linux" || strconv.IntSize != 64 {
		t.Skip("only 64-bit Linux waits without reaping (waitid WNOWAIT)")
	}
	ctx := testContext(t)
	cmd := exec.Command("/bin/sh", "-c", "exit 3")
	p, err := shared.StartCommand(cmd, shared.Size{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := p.Wait(ctx); err != nil || st.Code != 3 {
		t.Fatalf("Wait = %+v, %v; want code 3", st, err)
	}
	stat := fmt.Sprintf("/proc/%d/stat", cmd.Process.Pid)
	if b, err := os.ReadFile(stat); err != nil || !strings.Contains(string(b), ") Z") {
		t.Fatalf("after Wait the child is not a zombie holding its pid: %q, %v", b, err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(stat); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close the child is not reaped: %v", err)
	}
}

// running reports whether process pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if runtime.GOOS == "linux" {
			return false // gone
		}
		return unix.Kill(pid, 0) == nil
	}
	_, state, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(state, "Z") && !strings.HasPrefix(state, "X")
}

// A program that does not exist is the request's fault, whether named by
// a path or looked up in PATH (exec.ErrNotFound), as the HOST plugin has
// it: ErrInvalidArgument, through the plugin boundary too.
func TestStartCommandMissingProgram(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	env := sharedtest.Serve(t, commandEnv{})
	for _, name := range []string{"/nonexistent/program", "ptyhost-no-such-program"} {
		p, err := shared.StartCommand(exec.Command(name), shared.Size{Cols: 80, Rows: 24})
		if err == nil {
			p.Close()
			t.Fatalf("started %q, a program that does not exist", name)
		}
		if !errors.Is(err, shared.ErrInvalidArgument) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %q, want ErrInvalidArgument naming the program", name, err)
		}
		p, err = env.Spawn(testContext(t), shared.SpawnRequest{SessionID: "missing", Command: []string{name}, Size: shared.Size{Cols: 80, Rows: 24}})
		if err == nil {
			p.Close()
			t.Fatalf("spawned %q, a program that does not exist", name)
		}
		if !errors.Is(err, shared.ErrInvalidArgument) {
			t.Errorf("%s: spawn: error %q, want ErrInvalidArgument", name, err)
		}
	}
}

// A plugin that sets cmd.SysProcAttr, to run the session as another user
// say, keeps it: StartCommand adds the new session and its controlling
// terminal to it, and drops only a process group of the caller's, which a
// new session cannot have. It replaced it whole, and the session ran as
// the plugin's user.
func TestStartCommandKeepsTheCallersSysProcAttr(t *testing.T) {
	if os.Geteuid() != 0 {
		// make test runs as root (it installs with apt-get).
		if os.Getenv("PTYHOST_INTEGRATION") == "1" {
			t.Fatal("PTYHOST_INTEGRATION=1 but not root: running a child as another user needs root")
		}
		t.Skip("running a child as another user needs root")
	}
	const nobody = 65534
	ctx := testContext(t)
	cmd := exec.Command("/bin/sh", "-c", `printf 'uid=%s gid=%s\n' "$(id -u)" "$(id -g)"; : </dev/tty && echo ctty=yes`)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: nobody, Gid: nobody, NoSetGroups: true},
		Setpgid:    true,
	}
	p, err := shared.StartCommand(cmd, shared.Size{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, fmt.Sprintf("uid=%d gid=%d", nobody, nobody))
	term.Expect(ctx, "ctty=yes")
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v", st)
	}
}

func TestResizePTY(t *testing.T) {
	master, tty, err := shared.OpenPTY(shared.Size{Cols: 100, Rows: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer tty.Close()
	size := func() (uint16, uint16) {
		t.Helper()
		ws, err := unix.IoctlGetWinsize(int(tty.Fd()), unix.TIOCGWINSZ)
		if err != nil {
			t.Fatal(err)
		}
		return ws.Col, ws.Row
	}
	if c, r := size(); c != 100 || r != 40 {
		t.Errorf("opened at %dx%d, want 100x40", c, r)
	}
	for _, tt := range []struct {
		name       string
		size       shared.Size
		cols, rows uint16 // the terminal's size after
		err        error
	}{
		{"resize", shared.Size{Cols: 132, Rows: 50}, 132, 50, nil},
		{"zero columns", shared.Size{Cols: 0, Rows: 24}, 132, 50, shared.ErrInvalidArgument},
		{"zero rows", shared.Size{Cols: 80, Rows: 0}, 132, 50, shared.ErrInvalidArgument},
	} {
		err := shared.ResizePTY(master, tt.size)
		if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("%s: ResizePTY(%+v) = %v, want %v", tt.name, tt.size, err, tt.err)
		}
		if c, r := size(); c != tt.cols || r != tt.rows {
			t.Errorf("%s: terminal is %dx%d, want %dx%d", tt.name, c, r, tt.cols, tt.rows)
		}
	}
	// The master is non-blocking: a read deadline ends a read with nothing
	// to read.
	if err := master.SetReadDeadline(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := master.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
}
