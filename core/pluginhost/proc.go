package pluginhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/ptyhost/ptyhost/shared"
)

// Bounds on stopping a plugin process.
const (
	// pluginStopGrace is how long a plugin asked to stop gets to exit on
	// its own (go-plugin waits as long after its Shutdown call) before its
	// process group is killed.
	pluginStopGrace = 2 * time.Second
	// pluginDrainTimeout is how long the plugin's stdout and stderr are
	// read after its process group was killed: output a process outside
	// the group still holds open is not waited for longer.
	pluginDrainTimeout = 500 * time.Millisecond
)

// procRunner is go-plugin's runner for a plugin process. It differs from
// go-plugin's own in three ways:
//
//   - The plugin runs in a process group of its own, and every kill is sent
//     to the group: a helper the plugin forked (or a wrapper script's
//     background child) dies with it.
//   - Death is learnt from the process (waitid), not from its stdout and
//     stderr reaching EOF: died is closed as soon as the plugin process has
//     exited, whoever still holds its pipes.
//   - After the death the group is killed, and the pipes are read for at
//     most pluginDrainTimeout; then they are closed, so that go-plugin,
//     which waits for their EOF before it reports the exit (and in Kill),
//     never waits on a process that escaped the group.
//
// It can also let the process go (detach): the server leaves, the plugin
// goes on running for the next server to reattach to.
type procRunner struct {
	cmd            *exec.Cmd
	log            hclog.Logger
	socketDir      string
	stdout, stderr *drainedPipe

	died chan struct{} // closed when the process has exited (not yet reaped)
	// life ends when the process has exited: the dispensed client's calls
	// end with it.
	life       context.Context
	endLife    context.CancelFunc
	reapedC    chan struct{} // closed after reaping (or letting go); waitErr is set then
	waitErr    error
	killedOnce sync.Once
	stopWatch  chan struct{} // closed by detach
	detachOnce sync.Once

	mu sync.Mutex
	// mu protects the following.
	pid      int  // also the process group's id; 0 before the start
	killed   bool // killGroup was called
	reaped   bool // after reaping, the pid (and group id) may be reused
	detached bool // let go: never killed by us
}

var _ runner.Runner = (*procRunner)(nil)

// newProcRunner returns the runner for cmd, which go-plugin has filled in.
// The plugin is told to make its Unix socket in socketDir: go-plugin makes
// a directory per plugin inside it, which would lengthen the socket's path
// (at most 107 bytes) for nothing.
func newProcRunner(log hclog.Logger, cmd *exec.Cmd, socketDir string) (*procRunner, error) {
	setProcessGroup(cmd)
	if socketDir != "" {
		cmd.Env = append(cmd.Env, plugin.EnvUnixSocketDir+"="+socketDir) // later entries win
	}
	// So that a plugin knows its host even if this process is gone by
	// the time it looks (shared.HostPIDEnv).
	cmd.Env = append(cmd.Env, shared.HostPIDEnv+"="+strconv.Itoa(os.Getpid()))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	life, endLife := context.WithCancel(context.Background())
	return &procRunner{
		cmd: cmd, log: log, socketDir: socketDir,
		stdout: newDrainedPipe(stdout, true), stderr: newDrainedPipe(stderr, false).keepingTail(),
		died: make(chan struct{}), reapedC: make(chan struct{}), stopWatch: make(chan struct{}), life: life, endLife: endLife,
	}, nil
}

func (r *procRunner) Start(context.Context) error {
	if err := r.cmd.Start(); err != nil {
		r.endLife()
		return err
	}
	r.mu.Lock()
	r.pid = r.cmd.Process.Pid
	if r.killed { // killed while it started
		_ = killProcessGroup(r.pid)
	}
	r.mu.Unlock()
	r.log.Debug("plugin started", "path", r.Name(), "pid", r.cmd.Process.Pid)
	go r.watch(r.cmd.Process.Pid)
	return nil
}

// watch waits for the process to exit, kills what is left of its group,
// drains and closes its pipes, and reaps it; or lets it go on detach.
func (r *procRunner) watch(pid int) {
	reaped, stopped, waitErr := waitExited(r.cmd, pid, r.stopWatch)
	if stopped {
		r.letGo()
		return
	}
	close(r.died)
	r.endLife()
	r.killGroup()
	drain := time.NewTimer(pluginDrainTimeout)
	for _, p := range []*drainedPipe{r.stdout, r.stderr} {
		select {
		case <-p.eof:
		case <-drain.C:
		}
		p.close()
	}
	drain.Stop()
	if !reaped {
		waitErr = r.cmd.Wait()
	}
	r.mu.Lock()
	r.waitErr = waitErr
	r.reaped = true
	r.mu.Unlock()
	close(r.reapedC)
}

// killGroup sends SIGKILL to the plugin's process group, unless the plugin
// has been reaped or let go; before the process has started, it is killed
// as soon as it has.
func (r *procRunner) killGroup() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killed = true
	if r.reaped || r.detached || r.pid == 0 {
		return
	}
	if err := killProcessGroup(r.pid); err != nil {
		r.log.Warn("killing the plugin's process group", "pgid", r.pid, "error", err)
	}
}

// detach lets the running process go: it is not watched, killed or
// reaped by this runner any more, and its stdout and stderr are closed
// here, which ends go-plugin's readers and its Wait. The plugin's log
// lines from then on are lost (the plugin, which catches SIGPIPE, gets
// EPIPE writing them). It returns once the runner is done with the
// process; a process that exited meanwhile is handled as an exit.
func (r *procRunner) detach() {
	r.mu.Lock()
	r.detached = true
	r.mu.Unlock()
	r.detachOnce.Do(func() { close(r.stopWatch) })
	<-r.reapedC
}

// letGo ends the watch of a detached process.
func (r *procRunner) letGo() {
	r.endLife()
	r.stdout.close()
	r.stderr.close()
	_ = r.cmd.Process.Release()
	r.mu.Lock()
	r.reaped = true // as far as this runner is concerned: its pid is not ours to signal
	r.mu.Unlock()
	close(r.reapedC)
}

// handshake returns the go-plugin handshake line the plugin printed on
// its stdout, or "".
func (r *procRunner) handshake() string { return r.stdout.firstLine() }

// Wait waits until the process has exited and its pipes are done with.
func (r *procRunner) Wait(ctx context.Context) error {
	select {
	case <-r.reapedC:
		return r.waitErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill kills the plugin's process group. It does not wait.
func (r *procRunner) Kill(context.Context) error {
	r.killedOnce.Do(func() { r.log.Debug("killing the plugin's process group", "pgid", r.processID()) })
	r.killGroup()
	return nil
}

func (r *procRunner) Stdout() io.ReadCloser { return r.stdout }
func (r *procRunner) Stderr() io.ReadCloser { return r.stderr }

// Name is the plugin's path: its argv[0], which the process was started
// as, even when it was started through its open file (exeFile.command).
func (r *procRunner) Name() string { return r.cmd.Args[0] }

func (r *procRunner) ID() string {
	if pid := r.processID(); pid != 0 {
		return strconv.Itoa(pid)
	}
	return ""
}

// processID returns the plugin's pid, or 0 before it started.
func (r *procRunner) processID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pid
}

// Diagnose says why the plugin gave no handshake. One that exited says
// how, with the end of what it wrote on stderr, which go-plugin logs at
// debug level only (lines that are not hclog's JSON): most often the
// plugin's own reason.
func (r *procRunner) Diagnose(ctx context.Context) string {
	// go-plugin asks when the plugin's stdout ended, which comes a moment
	// before its exit is seen (or when a start timed out: then it runs on).
	settle := time.NewTimer(pluginDrainTimeout)
	defer settle.Stop()
	select {
	case <-r.died:
	case <-settle.C:
		return fmt.Sprintf("the plugin %s did not speak the go-plugin handshake on its stdout: "+
			"is it a ptyhost plugin, built for this system, executable by this user?", r.Name())
	case <-ctx.Done():
		return fmt.Sprintf("the plugin %s did not speak the go-plugin handshake on its stdout", r.Name())
	}
	// Its pipes drained and its status known, within a moment.
	wait, cancel := context.WithTimeout(ctx, pluginDrainTimeout+time.Second)
	defer cancel()
	how := "exited"
	if err := r.Wait(wait); err != nil && wait.Err() == nil {
		how = fmt.Sprintf("exited (%v)", err)
	}
	msg := fmt.Sprintf("the plugin %s %s before its go-plugin handshake", r.Name(), how)
	if tail := r.stderr.tailText(); tail != "" {
		msg += fmt.Sprintf("; the end of what it wrote on stderr: %q", tail)
	}
	return msg
}

func (r *procRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *procRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// drainedPipe is the reading end of a plugin's stdout or stderr. eof is
// closed when a read has returned io.EOF; after close, reads return io.EOF
// too (rather than os.ErrClosed, which go-plugin would log as an error).
// On stdout it keeps a copy of the first line read, go-plugin's handshake:
// the reattach record needs the server certificate it holds, which
// go-plugin keeps only inside a certificate pool.
type drainedPipe struct {
	r       io.ReadCloser
	eof     chan struct{}
	eofOnce sync.Once
	closeMu sync.Mutex
	closed  bool

	lineMu sync.Mutex
	// lineMu protects the following.
	line     []byte
	lineDone bool // true from the start when no line is kept
	tail     []byte
	keepTail bool // tail keeps the last maxPipeTail bytes read
}

// maxPipeTail bounds the end of a plugin's stderr a drainedPipe keeps.
const maxPipeTail = 512

// keepingTail makes p keep the last maxPipeTail bytes it reads.
func (p *drainedPipe) keepingTail() *drainedPipe {
	p.keepTail = true
	return p
}

// tailText returns the last lines read, at most maxPipeTail bytes (from a
// line's start when one is within them), trimmed.
func (p *drainedPipe) tailText() string {
	p.lineMu.Lock()
	defer p.lineMu.Unlock()
	t := bytes.TrimSpace(p.tail)
	if len(p.tail) == maxPipeTail {
		if i := bytes.IndexByte(t, '\n'); i >= 0 && i < len(t)-1 {
			t = t[i+1:]
		}
	}
	return string(t)
}

// maxHandshakeLine bounds the first line a drainedPipe keeps.
const maxHandshakeLine = 64 << 10

// newDrainedPipe wraps r; with keepFirstLine, it keeps r's first line.
func newDrainedPipe(r io.ReadCloser, keepFirstLine bool) *drainedPipe {
	return &drainedPipe{r: r, eof: make(chan struct{}), lineDone: !keepFirstLine}
}

func (p *drainedPipe) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.keepLine(b[:n])
	if err != nil && (errors.Is(err, os.ErrClosed) || errors.Is(err, io.EOF)) {
		p.eofOnce.Do(func() { close(p.eof) })
		return n, io.EOF
	}
	return n, err
}

// keepLine adds what was read to the first line, until its end, and to
// the tail when p keeps one.
func (p *drainedPipe) keepLine(b []byte) {
	p.lineMu.Lock()
	defer p.lineMu.Unlock()
	if p.keepTail && len(b) > 0 {
		p.tail = append(p.tail, b[max(0, len(b)-maxPipeTail):]...)
		if n := len(p.tail); n > maxPipeTail {
			p.tail = append(p.tail[:0], p.tail[n-maxPipeTail:]...)
		}
	}
	if p.lineDone || len(b) == 0 {
		return
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b, p.lineDone = b[:i], true
	}
	p.line = append(p.line, b[:min(len(b), maxHandshakeLine-len(p.line))]...)
	p.lineDone = p.lineDone || len(p.line) >= maxHandshakeLine
}

// firstLine returns the first line read, complete or not, without its
// newline.
func (p *drainedPipe) firstLine() string {
	p.lineMu.Lock()
	defer p.lineMu.Unlock()
	return string(p.line)
}

// Close is go-plugin's: it does nothing; the runner closes the pipe.
func (p *drainedPipe) Close() error { return nil }

func (p *drainedPipe) close() {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if !p.closed {
		p.closed = true
		_ = p.r.Close()
	}
}

// launchGuard is one launch's handle on its runner, which go-plugin creates
// inside Client.Start: it lets the launch be aborted from outside (Close
// while a plugin starts) and gives the generation its process.
type launchGuard struct {
	mu        sync.Mutex
	r         *procRunner
	cancelled bool
	// hostDir is the directory go-plugin made for the launch (see
	// newProcRunner), which nothing uses.
	hostDir string
}

// runnerFunc is the ClientConfig.RunnerFunc of a launch. go-plugin hands
// it a blank command holding only the protocol's environment; build makes
// the plugin's command from that.
func (l *launchGuard) runnerFunc(build func(protocolEnv []string) *exec.Cmd, socketDir string) func(hclog.Logger, *exec.Cmd, string) (runner.Runner, error) {
	return func(log hclog.Logger, blank *exec.Cmd, hostDir string) (runner.Runner, error) {
		l.mu.Lock()
		l.hostDir = hostDir
		l.mu.Unlock()
		r, err := newProcRunner(log, build(blank.Env), socketDir)
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.cancelled {
			return nil, errors.New("the plugins are stopping")
		}
		l.r = r
		return r, nil
	}
}

// abort kills the launch's process, if it has one, and keeps it from
// starting one.
func (l *launchGuard) abort() {
	l.mu.Lock()
	l.cancelled = true
	r := l.r
	l.mu.Unlock()
	if r != nil {
		r.killGroup()
	}
}

// life returns the context of the launch's process, which ends when it
// has exited, or nil before the process is made.
func (l *launchGuard) life() context.Context {
	if r := l.runner(); r != nil {
		return r.life
	}
	return nil
}

func (l *launchGuard) runner() *procRunner {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r
}

// removeLeftovers removes what a launch given up on leaves in the socket
// directory sockDir, once its process is gone (go-plugin's Kill has
// returned): the plugin's socket, which a killed plugin cannot remove,
// named by its handshake (go-plugin gives its address only after a
// successful start), and go-plugin's directory for the launch, which its
// Kill removes only when a process started. The handshake is the plugin's
// word, so only a socket directly in sockDir that nothing listens on is
// removed, as sweepSockets would: not another plugin's, through which the
// next server would reattach to it.
func (l *launchGuard) removeLeftovers(sockDir string) {
	l.mu.Lock()
	r, hostDir := l.r, l.hostDir
	l.mu.Unlock()
	sockDir = filepath.Clean(sockDir)
	if hostDir != "" && filepath.Dir(hostDir) == sockDir {
		_ = os.RemoveAll(hostDir)
	}
	if r == nil {
		return
	}
	// core|app|network|address|protocol|cert
	parts := strings.Split(r.handshake(), "|")
	if len(parts) < 4 || parts[2] != "unix" {
		return
	}
	path := parts[3]
	if filepath.Dir(path) != sockDir || !strings.HasPrefix(filepath.Base(path), "plugin") {
		return
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 && !listening(path) {
		_ = os.Remove(path)
	}
}
