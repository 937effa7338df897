package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/crypto/ssh"

	"github.com/ptyhost/ptyhost/shared"
)

const (
	// termType is the TERM of every session, sent in the pty-req.
	termType = "xterm-256color"
	// colorTerm is the default COLORTERM of every session, sent next to
	// TERM as an env request: the terminals ptyhost serves show 24-bit
	// colour.
	colorTerm = "truecolor"
	// killGrace is how long Kill waits after SIGHUP before SIGKILL to the
	// process group and closing the channel (less when Kill's ctx has a
	// nearer deadline).
	killGrace = 2 * time.Second
	// closeWait bounds how long Close waits for the server to confirm that
	// the channel is closed.
	closeWait = 2 * time.Second
	// maxPreamble bounds the output read while waiting for the start marker.
	maxPreamble = 1 << 20
)

// errSessionClosed is what a Read blocked in Close returns.
var errSessionClosed = errors.New("ssh session closed")

// terminalModes are sent with the pty-req: the line speed, and UTF-8 input
// so the remote line editor erases whole characters.
var terminalModes = ssh.TerminalModes{
	ssh.TTY_OP_ISPEED: 38400,
	ssh.TTY_OP_OSPEED: 38400,
	ssh.IUTF8:         1,
}

// sshPTY is one session: a "session" channel on its environment's pooled
// connection, with a pty-req and an exec request.
//
// Output: x/crypto copies the channel's data (and any extended data) into
// an outPipe that Read reads; the waiter goroutine closes the pipe only
// after session.Wait has returned, and Wait returns only after both copies
// ended, so Read's io.EOF comes after every output byte and after the exit
// status is known.
type sshPTY struct {
	conn  *conn
	sess  *ssh.Session
	stdin io.Writer
	out   *outPipe
	log   hclog.Logger

	// pending is output read while waiting for the start marker, which
	// Read returns first. Only Spawn, then Read's goroutine, touch it.
	pending []byte

	// pgid is the remote command's process group (and session) id, from
	// the ok marker; Kill and Close signal it. Set by Spawn.
	pgid int

	exited chan struct{}     // closed by the waiter when the session ended
	status shared.ExitStatus // set before exited is closed

	sentSignal atomic.Value // ssh.Signal: the last signal Kill or Close sent
	groupDone  atomic.Bool  // Kill's escalation sent SIGKILL to the group
	killOnce   sync.Once
	closed     chan struct{} // closed by Close
	closeOnce  sync.Once
	wg         sync.WaitGroup // the kill escalation
}

var _ shared.PTY = (*sshPTY)(nil)

// startSession opens a session on c and starts req's command in it, and
// returns once the command is about to run (see command.go). On failure
// it closes what it opened; the caller still holds, and must release, its
// reference on c. When the server refuses the session while c holds
// others, the error wraps errConnFull and c is marked full. ran reports
// whether the server accepted the exec request, after which the command
// may have run: such a start must not be tried again.
func (c *conn) startSession(ctx context.Context, req shared.SpawnRequest, cfg *config, log hclog.Logger) (_ *sshPTY, ran bool, _ error) {
	sess, err := c.openSession(ctx)
	if err != nil {
		return nil, false, err
	}
	p := &sshPTY{conn: c, sess: sess, log: log, exited: make(chan struct{}), closed: make(chan struct{})}
	started := false
	defer func() {
		if !started {
			_ = sess.Close()
			c.sessionClosed()
		}
	}()
	if p.stdin, err = sess.StdinPipe(); err != nil {
		return nil, false, err
	}
	p.out = newOutPipe()
	sess.Stdout, sess.Stderr = p.out, p.out

	for _, k := range req.UnsetEnv {
		if !shared.PortableEnvName(k) {
			return nil, false, fmt.Errorf("%w: unset_env: variable name %q: use letters, digits and '_', not starting with a digit", shared.ErrInvalidArgument, k)
		}
	}
	env := sessionEnv(cfg, req.Env)
	for _, k := range req.UnsetEnv {
		delete(env, k)
	}
	nonce := newNonce()
	stop := c.watchStall()
	exports, err := c.request(sess, req, cfg, env, nonce)
	stop()
	if err != nil {
		return nil, false, err
	}
	started = true
	c.pool.sessionStarted(c) // the command may run from now on
	go p.wait()
	if err := p.awaitStart(ctx, req, nonce); err != nil {
		p.closeOnce.Do(p.shut)
		c.pool.sessionGone(c) // the caller releases the reference
		return nil, true, err
	}
	if len(exports) > 0 {
		log.Debug("the server refused env requests; exported in the command instead", "names", slices.Sorted(maps.Keys(exports)))
	}
	return p, true, nil
}

// request sends a session's env requests, its pty-req and its exec
// request, each of which waits for the server's answer.
func (c *conn) request(sess *ssh.Session, req shared.SpawnRequest, cfg *config, env map[string]envVar, nonce string) (exports map[string]string, err error) {
	if exports, err = c.setenv(sess, env); err != nil {
		return nil, err
	}
	size := req.Size
	if err := sess.RequestPty(termType, int(size.Rows), int(size.Cols), terminalModes); err != nil {
		return nil, c.startError("allocate a terminal (pty-req)", err)
	}
	script := remoteScript{unset: req.UnsetEnv, exports: exports, dir: req.Dir, argv: req.Command, shell: cfg.Shell, nonce: nonce}
	if err := sess.Start(script.String()); err != nil {
		return nil, c.startError("run the command (exec request)", err)
	}
	return exports, nil
}

// sessionEnv is what a session's env requests carry: LANG and LC_* of the
// plugin's environment, as OpenSSH's default SendEnv does, then
// COLORTERM=truecolor, then the config's env, then the session's, later
// ones winning. COLORTERM and the config's and the session's variables
// fall back to an export when refused; the locale is a courtesy.
func sessionEnv(cfg *config, env map[string]string) map[string]envVar {
	out := make(map[string]envVar)
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if (k == "LANG" || strings.HasPrefix(k, "LC_")) && shared.PortableEnvName(k) {
			out[k] = envVar{value: v}
		}
	}
	out["COLORTERM"] = envVar{value: colorTerm, required: true}
	for k, v := range cfg.Env {
		out[k] = envVar{value: v, required: true}
	}
	for k, v := range env {
		out[k] = envVar{value: v, required: true}
	}
	return out
}

// envVar is one variable for a session.
type envVar struct {
	value    string
	required bool // export it when the env request is refused
}

// setenv sends an env request for each variable, and returns the required
// ones the server refused (sshd accepts only its AcceptEnv names), to be
// exported by the command line instead. Names the server refused once on
// this connection are not asked again.
func (c *conn) setenv(sess *ssh.Session, env map[string]envVar) (map[string]string, error) {
	var exports map[string]string
	refused := func(k string) {
		if env[k].required {
			if exports == nil {
				exports = make(map[string]string)
			}
			exports[k] = env[k].value
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if c.refusedEnv(k) {
			refused(k)
			continue
		}
		ok, err := sess.SendRequest("env", true, ssh.Marshal(&struct{ Name, Value string }{k, env[k].value}))
		if err != nil {
			return nil, c.sessionError("set the environment (env request)", err)
		}
		if !ok {
			c.refuseEnv(k)
			refused(k)
		}
	}
	return exports, nil
}

// sessionError explains a failed step of a session's start: the connection
// was lost (shared.ErrUnavailable), or the server refused.
func (c *conn) sessionError(step string, err error) error {
	if reason := c.lostReason(); reason != "" {
		return fmt.Errorf("%w: ssh: cannot %s: %s", shared.ErrUnavailable, step, reason)
	}
	var oce *ssh.OpenChannelError
	if errors.As(err, &oce) {
		return fmt.Errorf("ssh: %s refused to %s: %s", c.cfg.Target.addr(), step, oce.Message)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: ssh: cannot %s: the connection to %s is closing", shared.ErrUnavailable, step, c.cfg.Target.addr())
	}
	return fmt.Errorf("ssh: %s refused to %s", c.cfg.Target.addr(), step)
}

// newNonce returns a random hex string for the start markers.
func newNonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// awaitStart reads output until the start marker. Output before it (from
// the remote shell's start-up files) and after it is kept for Read.
func (p *sshPTY) awaitStart(ctx context.Context, req shared.SpawnRequest, nonce string) error {
	stop := context.AfterFunc(ctx, func() { p.out.closeRead(ctx.Err()) })
	defer stop()
	ok, noDir, noCmd := []byte(okMarkerPrefix(nonce)), []byte(marker(markNoDir, nonce)), []byte(marker(markNoCmd, nonce))
	host := p.conn.cfg.Target.addr()
	var got []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := p.out.Read(buf)
		got = append(got, buf[:n]...)
		if i := bytes.Index(got, ok); i >= 0 {
			if j := bytes.IndexByte(got[i+len(ok):], '\a'); j >= 0 {
				pid, perr := strconv.Atoi(string(got[i+len(ok) : i+len(ok)+j]))
				if perr != nil || pid <= 1 {
					return fmt.Errorf("ssh: %s: bad process id %q in the start marker", host, got[i+len(ok):i+len(ok)+j])
				}
				p.pgid = pid
				p.pending = append(got[:i:i], got[i+len(ok)+j+1:]...)
				return nil
			}
		}
		if i := bytes.Index(got, noDir); i >= 0 {
			return fmt.Errorf("%w: working directory %q on %s: %s", shared.ErrInvalidArgument, req.Dir, host, lastLine(got[:i], "cannot change to it"))
		}
		if i := bytes.Index(got, noCmd); i >= 0 {
			prog := programOf(req.Command, p.conn.cfg.Shell)
			return fmt.Errorf("%w: command %q not found on %s", shared.ErrInvalidArgument, prog, host)
		}
		switch {
		case err == nil && len(got) > maxPreamble:
			return fmt.Errorf("ssh: %s: no start marker in the first %d bytes of output", host, maxPreamble)
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			<-p.exited
			return fmt.Errorf("ssh: the remote shell on %s ended before running the command (%s): %s",
				host, describeStatus(p.status), lastLine(got, "no output"))
		}
	}
}

// programOf returns the program a session runs.
func programOf(argv []string, shell string) string {
	if len(argv) > 0 {
		return argv[0]
	}
	return shell
}

// lastLine returns the last non-empty line of out, or def.
func lastLine(out []byte, def string) string {
	lines := strings.Split(strings.ReplaceAll(string(out), "\r", ""), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			if len(l) > 300 {
				l = l[:300] + "…"
			}
			return l
		}
	}
	return def
}

func describeStatus(st shared.ExitStatus) string {
	switch {
	case st.Reason != "":
		return st.Reason
	case st.Signal != "":
		return "killed by " + st.Signal
	default:
		return fmt.Sprintf("exit status %d", st.Code)
	}
}

// wait waits for the session to end, records how, and then ends the
// output.
func (p *sshPTY) wait() {
	err := p.sess.Wait()
	p.status = p.statusOf(err)
	close(p.exited)
	p.out.closeWrite(nil)
}

// statusOf turns session.Wait's result into an exit status. A session
// that ended without an exit status ended abnormally: its connection was
// lost (the Reason says so), or Kill or Close closed it.
func (p *sshPTY) statusOf(err error) shared.ExitStatus {
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return shared.ExitStatus{}
	case errors.As(err, &ee):
		st := shared.ExitStatus{Code: ee.ExitStatus()}
		if sig := ee.Signal(); sig != "" {
			st.Signal = "SIG" + sig
		}
		return st
	}
	if reason := p.conn.lostReason(); reason != "" {
		return shared.ExitStatus{Code: -1, Reason: reason}
	}
	if sig, ok := p.sentSignal.Load().(ssh.Signal); ok {
		return signalStatus(sig)
	}
	return shared.ExitStatus{Code: -1, Reason: "the ssh server ended the session without an exit status: " + err.Error()}
}

// signalStatus is the status of a process killed by sig.
func signalStatus(sig ssh.Signal) shared.ExitStatus {
	n := map[ssh.Signal]int{ssh.SIGHUP: 1, ssh.SIGKILL: 9, ssh.SIGTERM: 15}[sig]
	return shared.ExitStatus{Code: 128 + n, Signal: "SIG" + string(sig)}
}

// Read implements shared.PTY.
func (p *sshPTY) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.out.Read(b)
}

// Write implements shared.PTY.
func (p *sshPTY) Write(b []byte) (int, error) {
	return p.stdin.Write(b)
}

// Resize implements shared.PTY with a window-change request.
func (p *sshPTY) Resize(_ context.Context, size shared.Size) error {
	if size.Cols == 0 || size.Rows == 0 {
		return fmt.Errorf("%w: size %dx%d", shared.ErrInvalidArgument, size.Cols, size.Rows)
	}
	return p.sess.WindowChange(int(size.Rows), int(size.Cols))
}

// Wait implements shared.PTY.
func (p *sshPTY) Wait(ctx context.Context) (shared.ExitStatus, error) {
	select {
	case <-p.exited:
		return p.status, nil
	case <-ctx.Done():
		return shared.ExitStatus{}, ctx.Err()
	}
}
