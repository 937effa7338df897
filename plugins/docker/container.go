package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
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
	if bin != "" {
		e.directTries.Add(1)
		err := s.startDirect(ctx, e, img, bin)
		switch {
		case err == nil:
			s.d.directWorked()
			return nil
		case !errors.Is(err, errDirectFailed):
			return err
		case s.cfg.Terminal == TerminalDirect:
			return fmt.Errorf("%w: terminal %q: %w", shared.ErrUnavailable, TerminalDirect, err)
		}
		// Nothing is left of it and nothing ran: the daemon's terminal,
		// as with a binary that cannot run in a container. Sessions on
		// this daemon do the same for a while without trying.
		if s.d.directFailedNow(err, time.Now()) {
			s.log.Warn("no direct terminal: the terminal goes through the daemon, for every session on this daemon for a while",
				"error", err, "retry_after", directRetryAfter)
		} else {
			s.log.Debug("no direct terminal: the terminal goes through the daemon", "error", err)
		}
	}
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

// create creates the session's container from the config and request:
// with init set, one whose command is pty-init holding a direct terminal
// (direct.go), else one with the daemon's TTY, its command behind the
// size gate if gate is set.
func (s *session) create(ctx context.Context, owner string, img client.ImageInspectResult, size shared.Size, gate bool, init *initMounts) (string, error) {
	argv := s.req.Command
	if len(argv) == 0 && s.cfg.Shell != "" {
		argv = []string{s.cfg.Shell}
	}
	labels := map[string]string{
		labelSession:     s.req.SessionID,
		labelEnvironment: s.req.EnvironmentID,
		labelOwner:       owner,
	}
	if !s.cfg.remove() {
		labels[labelKeep] = "true"
	}
	cfg := &container.Config{
		Image:        s.cfg.Image,
		User:         s.cfg.User,
		Env:          sessionEnvWithout(s.req.UnsetEnv, s.cfg.Env, s.req.Env),
		Tty:          true,
		OpenStdin:    true,
		StdinOnce:    false,
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
		Labels:       labels,
		// What a terminal's hangup sends; `docker stop` and Kill too.
		StopSignal: "SIGHUP",
	}
	if len(argv) > 0 {
		cfg.Cmd = argv
	}
	if gate {
		full := imageCommand(img, argv)
		if len(full) > 0 {
			cfg.Entrypoint = []string{"/bin/sh", "-c", sizeGate, "ptyhost-gate"}
			cfg.Cmd = full
		}
	}
	host := &container.HostConfig{
		NetworkMode: container.NetworkMode(s.cfg.Network),
		Resources: container.Resources{
			Memory:   int64(s.cfg.Memory),
			NanoCPUs: s.cfg.CPUs.nanoCPUs(),
		},
		// We remove it ourselves, after reading the exit code.
		AutoRemove: false,
		// The core keeps the scrollback; see config.LogDriver.
		LogConfig: container.LogConfig{Type: s.cfg.LogDriver, Config: s.cfg.LogOptions},
	}
	if s.cfg.init() {
		init := true
		host.Init = &init
	}
	if s.cfg.Privileged {
		host.Privileged = true
	} else {
		host.CapDrop = []string{"ALL"}
		host.CapAdd = s.cfg.CapAdd
		host.SecurityOpt = []string{"no-new-privileges"}
	}
	if s.req.Dir != "" {
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeBind, Source: s.req.Dir, Target: s.cfg.WorkdirTarget})
		cfg.WorkingDir = s.cfg.WorkdirTarget
	}
	for _, m := range s.cfg.Mounts {
		host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	if init != nil {
		full := imageCommand(img, argv)
		if len(full) == 0 {
			return "", fmt.Errorf("%w: image %s has no command and the session names none", shared.ErrInvalidArgument, s.cfg.Image)
		}
		// No TTY and nothing to attach: pty-init makes the terminal.
		cfg.Tty, cfg.OpenStdin = false, false
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr = false, false, false
		cfg.Entrypoint = []string{initPath, initArg, socketPath, strconv.Itoa(int(size.Rows)), strconv.Itoa(int(size.Cols)), "--"}
		cfg.Cmd = full
		host.Mounts = append(host.Mounts,
			mount.Mount{Type: mount.TypeBind, Source: init.binary, Target: initPath, ReadOnly: true},
			mount.Mount{Type: mount.TypeBind, Source: init.socket, Target: socketPath})
	} else {
		host.ConsoleSize = [2]uint{uint(size.Rows), uint(size.Cols)}
	}
	res, err := s.d.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     cfg,
		HostConfig: host,
		Name:       containerNameFor(s.req.SessionID),
	})
	if err != nil {
		return "", s.d.classify("create the container", err)
	}
	for _, w := range res.Warnings {
		s.log.Warn("docker warning creating the container", "warning", w)
	}
	return res.ID, nil
}

// imageCommand is what a container of img runs given argv as its command:
// the image's entrypoint, then argv or else the image's command.
func imageCommand(img client.ImageInspectResult, argv []string) []string {
	var entry, cmd []string
	if c := img.Config; c != nil {
		entry, cmd = c.Entrypoint, c.Cmd
	}
	if len(argv) > 0 {
		cmd = argv
	}
	return append(slices.Clone(entry), cmd...)
}

// sessionEnv is a session's environment: TERM=xterm-256color and
// COLORTERM=truecolor (what the terminals ptyhost serves, xterm.js among
// them, support), then the config's and the session's variables, later
// ones winning, sorted for a stable order.
func sessionEnv(layers ...map[string]string) []string {
	vars := map[string]string{"TERM": "xterm-256color", "COLORTERM": "truecolor"}
	for _, l := range layers {
		maps.Copy(vars, l)
	}
	env := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		env = append(env, k+"="+vars[k])
	}
	return env
}

// sessionEnvWithout is sessionEnv without the variables unset names
// (SpawnRequest.UnsetEnv). A container's process inherits nothing from the
// plugin, so only ptyhost's own layers can hold them; a variable the
// image itself sets (its ENV) stays.
func sessionEnvWithout(unset []string, layers ...map[string]string) []string {
	return slices.DeleteFunc(sessionEnv(layers...), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(unset, k)
	})
}

var nameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// containerNameFor names a session's container after the session, with a
// random suffix (session ids are unique per host, not per daemon).
func containerNameFor(sessionID string) string {
	name := nameUnsafe.ReplaceAllString(sessionID, "-")
	if len(name) > 40 {
		name = name[:40]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "ptyhost-" + name + "-" + hex.EncodeToString(b[:])
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
