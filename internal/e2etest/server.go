package e2etest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/testbin"
)

// Options says how to start a server. The zero value runs the ptyhost
// binary with the HOST plugin, a new data directory and --log-level warn.
type Options struct {
	// Plugins are the built-in plugins (such as "host", "docker") in the
	// server's plugin directory; nil means {"host"}. Ignored when
	// PluginDir is set.
	Plugins []string
	// PluginDir is the plugin directory, for a test that puts plugins of
	// its own there (testbin.PluginDir makes one).
	PluginDir string
	// DataDir is the data directory; empty means a new temporary one.
	DataDir string
	// LogLevel is the --log-level; empty means warn.
	LogLevel string
	// Args are more flags for `ptyhost serve`, after the ones above. A
	// --token among them becomes the Server's Token.
	Args []string
	// Env holds variables ("NAME=value") added to the server's
	// environment; DropPTYHOSTEnv leaves out the inherited PTYHOST_* ones.
	// Neither applies to Run.
	Env            []string
	DropPTYHOSTEnv bool
	// Wrapper, if set, is the program (and its first arguments) that runs
	// the ptyhost command line, such as a test binary that changes signal
	// dispositions and execs its arguments.
	Wrapper []string
	// Run, if set, runs the server in-process (cmd/ptyhost's run) instead
	// of the binary: it must return once ctx is done. Signal and Kill then
	// cancel ctx, and Pid fails the test.
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	// WaitLog makes Start wait for the "ptyhost serving" log line on
	// stderr (LogLevel info or debug) instead of the "serving on" line on
	// stdout, which the server prints only once its plugins have started.
	WaitLog bool
	// WaitPlugins makes Start also wait until every plugin runs.
	WaitPlugins bool
	// StartTimeout bounds each of Start's waits; zero means 60 s.
	StartTimeout time.Duration
	// KeepSessions makes the server's stop leave its sessions running for
	// the next server, as ptyhost's own default is. Without it Start
	// passes --hang-up-on-stop, so that a test's end (or its SIGTERM)
	// leaves no plugin process or session behind. Either way the test's
	// cleanup stops a server still running with every session hung up.
	KeepSessions bool
}

// DefaultOrphanTimeout is the --orphan-timeout Start passes unless Args
// give another: the plugins of a server a test killed and did not restart
// end their sessions and exit that long after, not ptyhost's 10 minutes;
// a test that restarts a server passes a longer one (--orphan-timeout in
// Args) so that a loaded machine cannot make it miss the window.
const DefaultOrphanTimeout = 5 * time.Second

// Server is a running `ptyhost serve`.
type Server struct {
	URL     string // such as http://127.0.0.1:41234
	Token   string // sent as a Bearer token by the REST helpers, if set
	DataDir string

	t      testing.TB
	opts   Options
	cmd    *exec.Cmd          // nil in-process
	cancel context.CancelFunc // in-process
	stderr Buffer
	done   chan struct{} // closed when the server has exited
	err    error         // its exit error, once done is closed
}

// stopTimeout bounds the cleanup's wait for a server to stop on SIGTERM.
const stopTimeout = 30 * time.Second

var servingLog = regexp.MustCompile(`msg="ptyhost serving" url=(http://\S+)`)

// Start starts a server and waits until it serves. The test's cleanup
// stops it if it still runs (see the package doc).
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{t: t, done: make(chan struct{})}
	args := s.prepare(t, o)

	stdout := &firstLine{line: make(chan string, 1)}
	if o.Run != nil {
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		go func() {
			s.err = o.Run(ctx, args, stdout, &s.stderr)
			close(s.done)
		}()
	} else {
		argv := append(append([]string{}, o.Wrapper...), testbin.Ptyhost(t))
		argv = append(argv, args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = serverEnv(o)
		cmd.Stdout, cmd.Stderr = stdout, &s.stderr
		// A plugin that outlives a killed server may hold its output open.
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", argv[0], err)
		}
		s.cmd = cmd
		go func() {
			s.err = cmd.Wait()
			close(s.done)
		}()
	}
	t.Cleanup(s.cleanup)

	within := o.StartTimeout
	if within == 0 {
		within = 60 * time.Second
	}
	if o.WaitLog {
		s.URL = s.waitLog(t, within)
	} else {
		select {
		case line := <-stdout.line:
			url, ok := strings.CutPrefix(line, "ptyhost: serving on ")
			if !ok {
				t.Fatalf("the server's first line is %q, want \"ptyhost: serving on URL\"\n%s", line, s.stderr.String())
			}
			s.URL = url
		case <-s.done:
			t.Fatalf("the server exited before it served: %v\n%s", s.err, s.stderr.String())
		case <-time.After(within):
			t.Fatalf("the server did not serve within %v\n%s", within, s.stderr.String())
		}
	}
	if o.WaitPlugins {
		s.WaitPlugins(t, within)
	}
	return s
}

// prepare fills in s's options (a new data directory, the plugin
// directory) and Token from o, and returns the server's command line.
func (s *Server) prepare(t testing.TB, o Options) []string {
	t.Helper()
	s.opts, s.DataDir = o, o.DataDir
	if s.DataDir == "" {
		s.DataDir = t.TempDir()
		s.opts.DataDir = s.DataDir
	}
	pluginDir := o.PluginDir
	if pluginDir == "" {
		plugins := o.Plugins
		if plugins == nil {
			plugins = []string{"host"}
		}
		pluginDir = testbin.PluginDir(t, plugins...)
		s.opts.PluginDir = pluginDir // a restart uses the same directory
	}
	level := o.LogLevel
	if level == "" {
		level = "warn"
	}
	args := []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", s.DataDir,
		"--plugin-dir", pluginDir, "--log-level", level, "--orphan-timeout", DefaultOrphanTimeout.String()}
	if !o.KeepSessions {
		args = append(args, "--hang-up-on-stop")
	}
	args = append(args, o.Args...) // later flags win
	for i, a := range o.Args {
		if a == "--token" && i+1 < len(o.Args) {
			s.Token = o.Args[i+1]
		} else if v, ok := strings.CutPrefix(a, "--token="); ok {
			s.Token = v
		}
	}
	return args
}

// RunRefused runs the ptyhost binary as Start would with o, for a server
// that is to refuse to start: it waits, at most within, for it to exit and
// returns what it wrote (its log and its error) and its exit error. It
// fails the test if the server starts serving instead. o.Run is ignored.
func RunRefused(t testing.TB, o Options, within time.Duration) (string, error) {
	t.Helper()
	s := &Server{t: t}
	args := s.prepare(t, o)
	argv := append(append([]string{}, o.Wrapper...), testbin.Ptyhost(t))
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], args...)...)
	cmd.Env = serverEnv(o)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the server did not exit within %v\n%s", within, out)
	}
	if bytes.Contains(out, []byte("serving on")) {
		t.Fatalf("the server served, want it refused:\n%s", out)
	}
	return string(out), err
}

// serverEnv is the environment of a server process.
func serverEnv(o Options) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !o.DropPTYHOSTEnv || !strings.HasPrefix(kv, "PTYHOST_") {
			env = append(env, kv)
		}
	}
	return append(env, o.Env...)
}

// waitLog waits for the "ptyhost serving" log line and returns its URL.
func (s *Server) waitLog(t testing.TB, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if m := servingLog.FindStringSubmatch(s.stderr.String()); m != nil {
			return m[1]
		}
		select {
		case <-s.done:
			t.Fatalf("the server exited before it served: %v\n%s", s.err, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not log that it serves within %v\n%s", within, s.stderr.String())
		}
		time.Sleep(10 * time.Millisecond) // a log to poll
	}
}

// Restart starts a new server with the same options and data directory,
// after this one has exited (Kill or Stop it first).
func (s *Server) Restart(t testing.TB) *Server {
	t.Helper()
	select {
	case <-s.done:
	default:
		t.Fatal("Restart: the server still runs; Kill or Stop it first")
	}
	return Start(t, s.opts)
}

// Options returns the options the server was started with, its data and
// plugin directories filled in: Start(t, s.Options()) with a change or two
// starts a server like it, on the same data directory.
func (s *Server) Options() Options {
	o := s.opts
	o.Args = append([]string(nil), o.Args...)
	return o
}

// Done is closed once the server has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stderr returns what the server has written to stderr: its log.
func (s *Server) Stderr() string { return s.stderr.String() }

// Pid returns the server's process id.
func (s *Server) Pid(t testing.TB) int {
	t.Helper()
	if s.cmd == nil {
		t.Fatal("Pid: the server runs in-process")
	}
	return s.cmd.Process.Pid
}

// Signal sends sig to the server, if it still runs; in-process, any
// signal cancels its context, as SIGTERM or SIGINT would. It may be called
// from any goroutine.
func (s *Server) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if s.cmd == nil {
		s.cancel()
		return
	}
	if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) && !isDone(s.done) {
		t.Errorf("signal %v to the server: %v", sig, err)
	}
}

// Wait waits for the server to exit and returns its exit error; if it has
// not exited within the bound, it kills it and fails the test.
func (s *Server) Wait(t testing.TB, within time.Duration) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(within):
		if s.cmd != nil {
			_ = s.cmd.Process.Kill()
		}
		t.Fatalf("the server did not exit within %v\n%s", within, s.stderr.String())
		return nil
	}
}

// Stop sends SIGTERM (in-process: cancels) and waits, as Wait, for the
// server to exit.
func (s *Server) Stop(t testing.TB, within time.Duration) error {
	t.Helper()
	s.Signal(t, syscall.SIGTERM)
	return s.Wait(t, within)
}

// Kill kills the server with SIGKILL, as a crash or an OOM kill would, and
// waits for it to be gone; its plugins may still run.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.Signal(t, syscall.SIGKILL)
	_ = s.Wait(t, stopTimeout)
}

func (s *Server) cleanup() {
	t := s.t
	if !isDone(s.done) {
		// A server that leaves its sessions on SIGTERM is asked to hang
		// them up, so the test leaves nothing running.
		stopped := false
		if s.opts.KeepSessions {
			code, _, err := s.Do("POST", "/api/v1/server/stop", map[string]bool{"hang_up": true})
			stopped = err == nil && code == 202
		}
		switch {
		case stopped:
		case s.cmd != nil:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
		default:
			s.cancel()
		}
		select {
		case <-s.done:
			if s.err != nil {
				t.Errorf("server: %v\n%s", s.err, s.stderr.String())
			}
		case <-time.After(stopTimeout):
			if s.cmd != nil {
				_ = s.cmd.Process.Kill()
				<-s.done
			}
			t.Errorf("the server did not stop within %v of SIGTERM\n%s", stopTimeout, s.stderr.String())
		}
	}
	if log := s.stderr.String(); t.Failed() && log != "" {
		t.Logf("server log:\n%s", log)
	}
}

func isDone(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// firstLine passes on the first line written to it, then discards.
type firstLine struct {
	mu   sync.Mutex
	buf  []byte
	sent bool
	line chan string
}

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sent {
		return len(p), nil
	}
	f.buf = append(f.buf, p...)
	if i := bytes.IndexByte(f.buf, '\n'); i >= 0 {
		f.line <- strings.TrimSpace(string(f.buf[:i]))
		f.sent, f.buf = true, nil
	}
	return len(p), nil
}
