package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/shared"
)

const (
	// execTokenVar names the variable that marks every process of an exec
	// session (the exec'd process and what it starts, which inherit it),
	// so that Kill can find them: Docker has no call to signal an exec.
	execTokenVar = "PTYHOST_EXEC"
	// defaultExecShell is the command of an exec session that names none.
	defaultExecShell = "/bin/sh"
)

// signalExec signals every process in the container whose environment
// holds the session's token: sh -c signalExec ptyhost-kill SIGNAL TOKEN. It
// exits 0 if it signalled any, so that signal 0 asks whether any is left (a
// zombie's environment cannot be read: it counts as gone). The token reaches
// every descendant that keeps its environment, whatever its process group
// or session, so a background job in a group of its own is signalled too.
// Without tr, the shell reads the environment with its NULs dropped, in
// which the token still shows.
const signalExec = `sig=$1 tok=$2 found=1
for d in /proc/[0-9]*; do
	env=$(tr '\0' '\n' < "$d/environ" 2>/dev/null || cat "$d/environ" 2>/dev/null) || continue
	case "$env" in
	*"` + execTokenVar + `=$tok"*) kill -s "$sig" "${d#/proc/}" 2>/dev/null && found=0 ;;
	esac
done
exit $found`

// execProcess is a session exec'd into an existing container.
type execProcess struct {
	s         *session
	container string // the target's id
	id        string // the exec's id
	token     string // the value of execTokenVar in its environment
}

var _ process = (*execProcess)(nil)

// startExec starts the session's process in the configured container and
// records it with running. A container that is missing is a config error,
// one that is not running is unavailable, and a working directory that is
// not a directory in it is an invalid argument.
func (s *session) startExec(ctx context.Context) error {
	target, err := s.d.execTarget(ctx, s.cfg.Container)
	if err != nil {
		return err
	}
	dir := s.req.Dir
	if dir == "" {
		dir = s.cfg.WorkdirTarget
	}
	if dir != "" {
		if err := s.checkDir(ctx, target, dir); err != nil {
			return err
		}
	}
	argv := s.req.Command
	if len(argv) == 0 {
		argv = []string{s.cfg.Shell}
		if s.cfg.Shell == "" {
			argv = []string{defaultExecShell}
		}
	}
	if !s.d.consoleSizeAtCreate() && s.hasShell(ctx, target) {
		// See sizeGate: this daemon ignores the size at exec start.
		argv = append([]string{"/bin/sh", "-c", sizeGate, "ptyhost-gate"}, argv...)
	}
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	p := &execProcess{s: s, container: target, token: hex.EncodeToString(tok[:])}
	size := s.currentSize()
	console := client.ConsoleSize{Height: uint(size.Rows), Width: uint(size.Cols)}
	created, err := s.d.api.ExecCreate(ctx, target, client.ExecCreateOptions{
		User:         s.cfg.User,
		TTY:          true,
		ConsoleSize:  console,
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
		Env:          sessionEnv(s.cfg.Env, s.req.Env, map[string]string{execTokenVar: p.token}),
		WorkingDir:   dir,
		Cmd:          argv,
	})
	if err != nil {
		return s.d.classify("create the exec", err)
	}
	p.id = created.ID
	// Attaching starts the process.
	att, err := s.d.api.ExecAttach(ctx, p.id, client.ExecAttachOptions{TTY: true, ConsoleSize: console})
	if err != nil {
		return s.d.classify("start the exec", err)
	}
	if !s.d.consoleSizeAtCreate() {
		if err := p.resize(ctx, size); err != nil {
			s.log.Debug("sizing the terminal after the start failed", "error", err)
		}
	}
	s.log.Debug("exec started", "container", shortID(target), "exec", shortID(p.id))
	s.running(p, hijacked{&att.HijackedResponse}, size)
	return nil
}

// checkDir fails unless dir is a directory in the container.
func (s *session) checkDir(ctx context.Context, target, dir string) error {
	st, err := s.d.api.ContainerStatPath(ctx, target, client.ContainerStatPathOptions{Path: dir})
	switch {
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%w: working directory %q does not exist in container %s", shared.ErrInvalidArgument, dir, s.cfg.Container)
	case err != nil:
		return s.d.classify("stat the working directory", err)
	case !st.Stat.Mode.IsDir():
		return fmt.Errorf("%w: working directory %q is not a directory in container %s", shared.ErrInvalidArgument, dir, s.cfg.Container)
	}
	return nil
}

// hasShell reports whether the container has /bin/sh.
func (s *session) hasShell(ctx context.Context, target string) bool {
	_, err := s.d.api.ContainerStatPath(ctx, target, client.ContainerStatPathOptions{Path: "/bin/sh"})
	return err == nil
}

func (p *execProcess) resize(ctx context.Context, size shared.Size) error {
	_, err := p.s.d.api.ExecResize(ctx, p.id, client.ExecResizeOptions{Height: uint(size.Rows), Width: uint(size.Cols)})
	if err != nil {
		return p.s.d.classify("resize", err)
	}
	return nil
}

// exit polls the exec's state until it is no longer running (the output
// ends a moment before the daemon records the exit), for at most
// exitTimeout.
func (p *execProcess) exit(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, exitTimeout)
	defer cancel()
	delay := 2 * time.Millisecond
	for {
		res, err := p.s.d.api.ExecInspect(ctx, p.id, client.ExecInspectOptions{})
		if err != nil {
			return 0, err
		}
		if !res.Running {
			return res.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("the daemon did not report the exec's exit within %v", exitTimeout)
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// oomKilled is false: Docker does not tell for an exec.
func (p *execProcess) oomKilled(context.Context) bool { return false }

// running reports whether the exec'd process still runs.
func (p *execProcess) running(ctx context.Context) bool {
	res, err := p.s.d.api.ExecInspect(ctx, p.id, client.ExecInspectOptions{})
	return err == nil && res.Running
}

// hangup sends SIGHUP to every process of the session, then SIGKILL to
// those left after grace. The container itself is left alone.
//
// The exec'd process ending is not enough to stop early: a background job
// it started that ignores SIGHUP (nohup) outlives it in the shared
// container, so once the exec has ended hangup asks whether any process of
// the session is left, and only when none is does it skip the SIGKILL.
func (p *execProcess) hangup(ctx context.Context, grace time.Duration) {
	if !p.running(ctx) {
		return
	}
	p.signal(ctx, "HUP")
	deadline := time.Now().Add(grace)
	delay := 10 * time.Millisecond
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		// Signal 0 only tells whether any process of the session is left.
		if !p.running(ctx) && !p.signal(ctx, "0") {
			return
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
	p.signal(ctx, "KILL")
}

// signal runs a helper exec that signals the session's processes, as the
// session's user, and waits for it. It reports whether it may have
// signalled any: false only when the helper ran and found none.
func (p *execProcess) signal(ctx context.Context, sig string) bool {
	created, err := p.s.d.api.ExecCreate(ctx, p.container, client.ExecCreateOptions{
		User: p.s.cfg.User,
		Cmd:  []string{"/bin/sh", "-c", signalExec, "ptyhost-kill", sig, p.token},
	})
	if err == nil {
		_, err = p.s.d.api.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true})
	}
	if err != nil {
		p.s.log.Warn("signalling the exec'd process failed", "signal", sig, "error", err)
		return true
	}
	// Wait for the helper so that the signal has been sent on return.
	for i := 0; i < 100; i++ {
		res, err := p.s.d.api.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
		if err != nil {
			return true
		}
		if !res.Running {
			if res.ExitCode != 0 {
				if sig != "0" {
					p.s.log.Debug("no process of the session to signal", "signal", sig)
				}
				return false
			}
			return true
		}
		select {
		case <-ctx.Done():
			return true
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// cleanup kills the exec'd process if it still runs; the container stays.
func (p *execProcess) cleanup(ctx context.Context) {
	if p.running(ctx) {
		p.hangup(ctx, killGrace)
	}
}
