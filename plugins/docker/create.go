package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
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
	if err := ctx.Err(); err != nil {
		return "", err // nothing sent: nothing to remove
	}
	name := containerNameFor(s.req.SessionID)
	res, err := s.d.api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     cfg,
		HostConfig: host,
		Name:       name,
	})
	switch {
	case err != nil && ctx.Err() != nil:
		s.removeAbandoned(ctx, name)
		return "", s.d.classify("create the container", err)
	case cerrdefs.IsNotFound(err):
		// What the config names and the daemon lacks, such as a
		// network: the image was there a moment ago.
		return "", fmt.Errorf("%w: create the container: %w", shared.ErrInvalidConfig, err)
	case err != nil:
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

// abandonTimeout bounds the clean-up after a create or an exec start that
// ctx ended: how long the daemon may take to finish what it was asked.
const abandonTimeout = 5 * time.Second

// removeAbandoned removes the container named name, which a create that
// ctx ended (a spawn timeout, a Close during the start) may have made all
// the same: the daemon finishes a create whose client has gone, and the
// container, labelled with this live plugin process, would be nobody's to
// remove. Until it exists, the name is not found: removeAbandoned tries
// again, with a fresh context bounded by abandonTimeout, until the
// container is removed or that time is up.
func (s *session) removeAbandoned(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abandonTimeout)
	defer cancel()
	delay := 20 * time.Millisecond
	for {
		_, err := s.d.api.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		switch {
		case err == nil:
			s.log.Debug("removed the container of a create that was given up", "container", name)
			return
		case ctx.Err() != nil:
			s.log.Debug("no container of a create that was given up appeared", "container", name, "waited", abandonTimeout.String())
			return
		case !cerrdefs.IsNotFound(err):
			s.log.Warn("removing the container of a create that was given up failed", "container", name, "error", err)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}
