package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
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
	// gone is set once no process of the session is left (signal).
	gone atomic.Bool
}

var _ process = (*execProcess)(nil)

// startExec starts the session's process in the configured container and
// records it with running. A container that is missing is a config error,
// one that is not running is unavailable, and a working directory that is
// not a directory in it is an invalid argument.
func (s *session) startExec(ctx context.Context) error {
	ctr, err := s.d.execTarget(ctx, s.cfg.Container)
	if err != nil {
		return err
	}
	if err := checkExecConfinement(ctx, s.d, ctr, s.req.WorkdirRoots); err != nil {
		return err
	}
	target, inherited := ctr.ID, inheritedEnv(ctr)
	// The token must stay whatever the session's unset names: it is how
	// hangup finds the session's processes.
	unset := slices.DeleteFunc(slices.Clone(s.req.UnsetEnv), func(k string) bool { return k == execTokenVar })
	dir := s.req.Dir
	if dir == "" {
		dir = s.cfg.WorkdirTarget
	}
	if dir != "" {
		if err := s.checkDir(ctx, target, dir); err != nil {
			return err
		}
	}
	if err := s.checkExecUser(ctx, target); err != nil {
		return err
	}
	argv := s.req.Command
	if len(argv) == 0 {
		argv = []string{s.cfg.Shell}
		if s.cfg.Shell == "" {
			argv = []string{defaultExecShell}
		}
	}
	argv = s.withoutInherited(ctx, target, inherited, unset, argv)
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
		Env:          sessionEnvWithout(unset, s.cfg.Env, s.req.Env, map[string]string{execTokenVar: p.token}),
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
		if ctx.Err() != nil {
			p.killAbandoned(ctx)
		}
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

// killAbandoned kills the processes of an exec whose start ctx ended
// (a spawn timeout, a Close during the start): the daemon starts the
// process whether or not the client still waits for its answer, and it
// would run in the shared container with nobody to end it. An exec
// created and never started runs nothing, so nothing is done for a
// create that ctx ended. With a fresh context bounded by abandonTimeout,
// it waits for the daemon to say the exec started (its pid), then kills
// the session's processes by their token (signal); an exec that does not
// start within that time is left, as one that never will.
func (p *execProcess) killAbandoned(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abandonTimeout)
	defer cancel()
	delay := 20 * time.Millisecond
	for {
		res, err := p.s.d.api.ExecInspect(ctx, p.id, client.ExecInspectOptions{})
		switch {
		case err != nil:
			// Gone with its container, or no answer in time.
			p.s.log.Debug("cannot tell whether the exec of a start given up runs", "exec", shortID(p.id), "error", err)
			return
		case res.Running || res.PID != 0:
			p.s.log.Debug("killing the processes of an exec whose start was given up", "exec", shortID(p.id))
			p.signal(ctx, "KILL")
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

// envPaths are where withoutInherited looks for env(1) in the container.
var envPaths = []string{"/usr/bin/env", "/bin/env"}

// daemonExecEnv are the variables the daemon gives every exec with a TTY
// before the container's own: PATH, HOSTNAME and TERM=xterm.
var daemonExecEnv = []string{"PATH", "HOSTNAME", "TERM"}

// withoutInherited returns argv wrapped so that the session is without the
// variables in unset that it would inherit from the container: the
// daemon's (daemonExecEnv) and the container's config's (inherited, the
// image's ENV included). The Engine API can add variables to an exec but
// not remove one, and sessionEnvWithout only strips ptyhost's own layers.
// The wrapper is the container's env(1), "env -u NAME … -- argv", which
// execs argv in its place (the same process, so its exit and signals are
// the command's); it needs no shell. A container without env keeps them:
// the plugin logs which.
func (s *session) withoutInherited(ctx context.Context, target string, inherited, unset, argv []string) []string {
	var names []string
	for _, kv := range append(slices.Clone(daemonExecEnv), inherited...) {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains(unset, k) && !slices.Contains(names, k) {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return argv
	}
	for _, env := range envPaths {
		if _, err := s.d.api.ContainerStatPath(ctx, target, client.ContainerStatPathOptions{Path: env}); err != nil {
			continue
		}
		wrapped := []string{env}
		for _, k := range names {
			wrapped = append(wrapped, "-u", k)
		}
		return append(append(wrapped, "--"), argv...)
	}
	s.log.Warn("the session keeps variables it should be without, which the container itself defines: the container has no env to remove them",
		"names", names, "looked_for", envPaths)
	return argv
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

// hangup sends SIGHUP to every process of the session, then SIGKILL to
// those left after grace. The container itself is left alone.
//
// It does so whether or not the exec'd process still runs: Docker kills
// nothing when an exec ends, so a background job the session started that
// ignores SIGHUP (nohup), or runs in a session of its own (setsid),
// outlives the exec'd process in the shared container. hangup returns
// early only once the helper finds no process of the session left.
func (p *execProcess) hangup(ctx context.Context, grace time.Duration) {
	if !p.signal(ctx, "HUP") {
		return
	}
	deadline := time.Now().Add(grace)
	delay := 10 * time.Millisecond
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(delay, time.Until(deadline))):
		}
		// Signal 0 only tells whether any process of the session is left.
		if !p.signal(ctx, "0") {
			return
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
	p.signal(ctx, "KILL")
}

// signal runs a helper exec that signals the session's processes, as the
// session's user, and waits for it. It reports whether it may have
// signalled any: false only when the helper ran and found none (its exit
// code 1), or when the daemon runs no exec in the container (gone,
// stopped, paused). Once none is found, later calls return false without
// a helper: no process is left to start another with the token.
func (p *execProcess) signal(ctx context.Context, sig string) bool {
	if p.gone.Load() {
		return false
	}
	created, err := p.s.d.api.ExecCreate(ctx, p.container, client.ExecCreateOptions{
		User: p.s.cfg.User,
		Cmd:  []string{"/bin/sh", "-c", signalExec, "ptyhost-kill", sig, p.token},
	})
	if err == nil {
		_, err = p.s.d.api.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true})
	}
	switch {
	case cerrdefs.IsNotFound(err):
		// The container was removed, and its processes with it.
		p.s.log.Debug("no process of the session to signal: the container is gone", "signal", sig, "error", err)
		p.gone.Store(true)
		return false
	case cerrdefs.IsConflict(err):
		// The daemon runs no exec in a container that is stopped (its
		// processes are gone), restarting (likewise) or paused (they
		// cannot be signalled): waiting would change nothing.
		p.s.log.Debug("cannot signal the session's processes: the container does not run", "signal", sig, "error", err)
		return false
	case err != nil:
		p.s.log.Warn("signalling the session's processes failed", "signal", sig, "error", err)
		return true
	}
	// Wait for the helper so that the signal has been sent on return.
	for i := 0; i < 100; i++ {
		res, err := p.s.d.api.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
		if err != nil {
			return true
		}
		if !res.Running {
			switch res.ExitCode {
			case 0:
				return true
			case 1: // signalExec's "none": any other code is the helper failing
				if sig != "0" {
					p.s.log.Debug("no process of the session to signal", "signal", sig)
				}
				p.gone.Store(true)
				return false
			}
			if sig != "0" {
				p.s.log.Warn("the helper that signals the session's processes failed: the container needs /bin/sh, tr and kill",
					"signal", sig, "exit_code", res.ExitCode)
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

// cleanup ends every process of the session still left, the exec'd
// process or not (see hangup); the container stays.
func (p *execProcess) cleanup(ctx context.Context) {
	p.hangup(ctx, killGrace)
}
