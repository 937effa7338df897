package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/shared"
)

// Labels on every container the plugin creates.
const (
	labelSession     = "io.ptyhost.session"     // the session's id
	labelEnvironment = "io.ptyhost.environment" // the environment's id
	labelOwner       = "io.ptyhost.owner"       // the plugin process (see ownerID)
	labelKeep        = "io.ptyhost.keep"        // "true": remove is false
)

// sizeGate is the entrypoint that holds a container's command until its
// terminal has a size, for daemons older than API 1.42, which ignore the
// size given at create: the plugin sets it right after the start, and the
// command must not look at the terminal before. It polls `stty size` every
// 10 ms, for at most about 3 s, then execs the command ("$@"); without
// stty it execs at once.
const sizeGate = `command -v stty >/dev/null 2>&1 || exec "$@"
i=0
while [ "$i" -lt 300 ]; do
	case "$(stty size 2>/dev/null)" in ""|"0 0") ;; *) break ;; esac
	sleep 0.01 2>/dev/null || { sleep 1; i=$((i+99)); }
	i=$((i+1))
done
exec "$@"`

// ctrProcess is a session's own container.
type ctrProcess struct {
	s  *session
	id string

	// exited is closed when the daemon's wait for the exit has ended;
	// code and waitErr are written before.
	exited  chan struct{}
	code    int
	waitErr error

	// term is the container's terminal when the plugin holds it (a
	// direct terminal, direct.go); nil when the daemon does.
	term *shared.Terminal
}

var _ process = (*ctrProcess)(nil)

// startContainer creates the session's container, attaches to it, starts
// it and records it with running; with a direct terminal, startDirect
// does. Any failure removes the container.
func (s *session) startContainer(ctx context.Context, e *Docker, img client.ImageInspectResult) error {
	bin, err := e.directBinary(s)
	if err != nil {
		return err
	}
	if bin != "" && s.cfg.Terminal != TerminalDirect {
		if why := s.d.noDirect(time.Now()); why != nil {
			s.log.Debug("the terminal goes through the daemon: a direct terminal failed there lately", "reason", why)
			bin = ""
		}
	}
	if bin == "" {
		return s.startAttached(ctx, e, img)
	}
	e.directTries.Add(1)
	err = s.startDirect(ctx, e, img, bin)
	var unproven *unprovenError
	switch {
	case err == nil:
		s.d.directWorked()
		return nil
	case errors.As(err, &unproven):
		return s.startUnproven(ctx, e, img, unproven)
	case !errors.Is(err, errDirectFailed):
		return err
	case s.cfg.Terminal == TerminalDirect:
		return fmt.Errorf("%w: terminal %q: %w", shared.ErrUnavailable, TerminalDirect, err)
	}
	// Nothing is left of it and nothing ran: the daemon's terminal,
	// as with a binary that cannot run in a container. Sessions on
	// this daemon do the same for a while without trying.
	s.directFailed(err)
	return s.startAttached(ctx, e, img)
}

// startUnproven goes on after the daemon would not create or start a
// direct terminal's container for a reason that may be the session's as
// much as the direct terminal's (unprovenError). Named explicitly, the
// direct terminal is not replaced: the session fails with the daemon's
// error. Otherwise the daemon's terminal tells: if it fails too, its error
// is the session's, and the direct terminal is not blamed; if it works,
// the direct terminal's failure was its own after all, and is remembered
// as one (directFailed).
func (s *session) startUnproven(ctx context.Context, e *Docker, img client.ImageInspectResult, u *unprovenError) error {
	if s.cfg.Terminal == TerminalDirect {
		return u.err
	}
	s.log.Debug("the direct terminal's container did not start: trying the daemon's terminal", "error", u.err)
	if err := s.startAttached(ctx, e, img); err != nil {
		return err
	}
	s.directFailed(fmt.Errorf("%w: %w", errDirectFailed, u.err))
	return nil
}

// startAttached creates the session's container with the daemon's
// terminal, attaches to it, starts it and records it with running. Any
// failure removes the container.
func (s *session) startAttached(ctx context.Context, e *Docker, img client.ImageInspectResult) error {
	gate := !s.d.consoleSizeAtCreate()
	size := s.currentSize()
	id, err := s.create(ctx, e.owner, img, size, gate, nil)
	if err != nil {
		return err
	}
	c := &ctrProcess{s: s, id: id, exited: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			c.remove(ctx)
		}
	}()
	if gate {
		// The gate needs a POSIX shell in the image; without one the
		// terminal gets its size just after the start.
		_, err := s.d.api.ContainerStatPath(ctx, id, client.ContainerStatPathOptions{Path: "/bin/sh"})
		switch {
		case cerrdefs.IsNotFound(err):
			s.log.Debug("image has no /bin/sh: no size gate", "image", s.cfg.Image)
			c.remove(ctx)
			if c.id, err = s.create(ctx, e.owner, img, size, false, nil); err != nil {
				c.id = ""
				return err
			}
		case err != nil:
			// The start will say what is wrong (the archive call fails,
			// for one, when a mount cannot be set up).
			s.log.Debug("cannot look for /bin/sh in the container", "error", err)
		default:
			// The start cannot fail for a missing command behind the
			// gate, as it does without it: check an absolute one here.
			if err := c.checkCommand(ctx); err != nil {
				return err
			}
		}
	}

	// Attach and wait before the start, so that no output and no exit is
	// missed.
	att, err := s.d.api.ContainerAttach(ctx, c.id, client.ContainerAttachOptions{
		Stream: true, Stdin: true, Stdout: true, Stderr: true,
	})
	if err != nil {
		return s.d.classify("attach to the container", err)
	}
	stream := &att.HijackedResponse
	defer func() {
		if !ok {
			stream.Close()
		}
	}()
	if err := c.watch(); err != nil {
		return err
	}
	if _, err := s.d.api.ContainerStart(ctx, c.id, client.ContainerStartOptions{}); err != nil {
		return s.d.classify("start the container", err)
	}
	if !s.d.consoleSizeAtCreate() {
		// The documented exception: this daemon ignored the size at
		// create. The gate holds the command until this lands.
		if err := c.resize(ctx, size); err != nil {
			s.log.Debug("sizing the terminal after the start failed", "error", err)
		}
	}
	ok = true
	s.log.Debug("container started", "container", shortID(c.id), "image", s.cfg.Image)
	s.running(c, hijacked{stream}, size)
	return nil
}

// watch registers the daemon's wait for the container's next exit. The
// daemon has registered it when the call returns, so it must come before
// the start.
func (c *ctrProcess) watch() error {
	w := c.s.d.api.ContainerWait(c.s.ctx, c.id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	select {
	case err := <-w.Error:
		close(c.exited)
		return c.s.d.classify("wait for the container", err)
	default:
	}
	go func() {
		defer close(c.exited)
		select {
		case r := <-w.Result:
			c.code = int(r.StatusCode)
			if r.Error != nil && r.Error.Message != "" {
				c.waitErr = errors.New(r.Error.Message)
			}
		case err := <-w.Error:
			c.waitErr = err
		}
	}()
	return nil
}

// checkCommand fails if the session's command is an absolute path that
// does not exist in the container.
func (c *ctrProcess) checkCommand(ctx context.Context) error {
	argv := c.s.req.Command
	if len(argv) == 0 || !path.IsAbs(argv[0]) {
		return nil
	}
	_, err := c.s.d.api.ContainerStatPath(ctx, c.id, client.ContainerStatPathOptions{Path: argv[0]})
	switch {
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%w: command %s not found in image %s", shared.ErrInvalidArgument, argv[0], c.s.cfg.Image)
	case err != nil:
		return c.s.d.classify("stat the command", err)
	}
	return nil
}

func (c *ctrProcess) resize(ctx context.Context, size shared.Size) error {
	if c.term != nil {
		return c.term.Resize(size)
	}
	_, err := c.s.d.api.ContainerResize(ctx, c.id, client.ContainerResizeOptions{Height: uint(size.Rows), Width: uint(size.Cols)})
	if err != nil {
		return c.s.d.classify("resize", err)
	}
	return nil
}

// exit waits for the daemon's report of the exit. Should it not come
// within exitTimeout, the container's state says.
func (c *ctrProcess) exit(ctx context.Context) (int, error) {
	t := time.NewTimer(exitTimeout)
	defer t.Stop()
	select {
	case <-c.exited:
		return c.code, c.waitErr
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-t.C:
	}
	res, err := c.s.d.api.ContainerInspect(ctx, c.id, client.ContainerInspectOptions{})
	switch {
	case err != nil:
		return 0, err
	case res.Container.State != nil && !res.Container.State.Running:
		return res.Container.State.ExitCode, nil
	}
	return 0, fmt.Errorf("the daemon did not report the container's exit within %v", exitTimeout)
}

func (c *ctrProcess) oomKilled(ctx context.Context) bool {
	res, err := c.s.d.api.ContainerInspect(ctx, c.id, client.ContainerInspectOptions{})
	return err == nil && res.Container.State != nil && res.Container.State.OOMKilled
}

// hangup stops the container: SIGHUP (its stop signal), SIGKILL after
// grace.
func (c *ctrProcess) hangup(ctx context.Context, grace time.Duration) {
	secs := int(math.Ceil(grace.Seconds()))
	if _, err := c.s.d.api.ContainerStop(ctx, c.id, client.ContainerStopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		c.s.log.Warn("stopping the container failed", "container", shortID(c.id), "error", err)
	}
}

// cleanup removes the container, with its anonymous volumes; with remove
// false it only makes sure it is not running.
func (c *ctrProcess) cleanup(ctx context.Context) {
	if !c.s.cfg.remove() {
		_, err := c.s.d.api.ContainerKill(ctx, c.id, client.ContainerKillOptions{Signal: "KILL"})
		if err != nil && !cerrdefs.IsConflict(err) && !cerrdefs.IsNotFound(err) {
			c.s.log.Warn("killing the kept container failed", "container", shortID(c.id), "error", err)
		}
		return
	}
	c.remove(ctx)
}

// remove force-removes the container with its anonymous volumes. It runs
// on, for cleanupTimeout, when ctx is cancelled: failing starts use it.
func (c *ctrProcess) remove(ctx context.Context) {
	if c.id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, err := c.s.d.api.ContainerRemove(ctx, c.id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		c.s.log.Warn("removing the container failed", "container", shortID(c.id), "error", err)
		return
	}
	c.s.log.Debug("container removed", "container", shortID(c.id))
}

// shortID shortens a container id for logs, as docker ps does.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
