package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/ptyhost/ptyhost/shared"
)

// checkRoots checks the paths of the daemon's machine that a session's
// container would bind mount — the worktree (req.Dir) and the config's
// mounts — against the host's working-directory roots
// (req.WorkdirRoots), before anything is created. A path outside them is
// an error wrapping shared.ErrPermissionDenied. When the daemon listens on
// a unix socket it runs on this machine, and the paths' symbolic links are
// resolved before the comparison; req.Dir and the mounts' sources are then
// replaced by the resolved paths, which is what the daemon mounts. A remote
// daemon's paths are compared as written, cleaned. Exec mode mounts
// nothing.
//
// With roots set, a container must not reach the host past them in other
// ways either: checkConfinement refuses the settings that would.
func checkRoots(d *daemon, cfg *config, req *shared.SpawnRequest) error {
	if len(req.WorkdirRoots) == 0 || cfg.execMode() {
		return nil
	}
	if err := checkConfinement(cfg.Privileged, cfg.CapAdd, cfg.Network); err != nil {
		return fmt.Errorf("environment config: %w", err)
	}
	local := d.local()
	if req.Dir != "" {
		dir, err := shared.CheckUnderRoots(req.WorkdirRoots, req.Dir, local)
		if err != nil {
			return fmt.Errorf("worktree mount: %w", err)
		}
		req.Dir = dir
	}
	mounts := slices.Clone(cfg.Mounts)
	for i, m := range mounts {
		src, err := shared.CheckUnderRoots(req.WorkdirRoots, m.Source, local)
		if err != nil {
			return fmt.Errorf("environment config: mounts[%d]: %w", i, err)
		}
		mounts[i].Source = src
	}
	cfg.Mounts = mounts
	return nil
}

// dockerDefaultCaps are the capabilities Docker gives a container unless
// told otherwise (moby's oci/caps.DefaultCapabilities): the set its
// default seccomp and AppArmor profiles and device rules are made for.
var dockerDefaultCaps = map[string]bool{
	"CHOWN": true, "DAC_OVERRIDE": true, "FSETID": true, "FOWNER": true, "MKNOD": true,
	"NET_RAW": true, "SETGID": true, "SETUID": true, "SETFCAP": true, "SETPCAP": true,
	"NET_BIND_SERVICE": true, "SYS_CHROOT": true, "KILL": true, "AUDIT_WRITE": true,
}

// checkConfinement refuses, while working-directory roots are set, a
// container that could reach the host past them: a privileged one, one
// given a capability beyond Docker's defaults (DAC_READ_SEARCH opens any
// file of a mounted file system by its handle, SYS_ADMIN mounts, ALL is
// root), or one in the host's network namespace (the host's loopback
// services and abstract sockets). The error wraps
// shared.ErrPermissionDenied.
func checkConfinement(privileged bool, capAdd []string, network string) error {
	refuse := func(what string) error {
		return fmt.Errorf("%w: %s is not allowed while the server restricts sessions to working-directory roots: it would reach the host past them", shared.ErrPermissionDenied, what)
	}
	if privileged {
		return refuse("privileged")
	}
	for _, c := range capAdd {
		if name := strings.TrimPrefix(strings.ToUpper(c), "CAP_"); !dockerDefaultCaps[name] {
			return refuse(fmt.Sprintf("cap_add %q (beyond Docker's default capabilities)", c))
		}
	}
	if container.NetworkMode(network).IsHost() {
		return refuse(`network "host"`)
	}
	return nil
}

// checkExecConfinement refuses, while roots are set, exec mode into a
// container made with more than checkConfinement allows, or sharing the
// host's PID or IPC namespace, given devices, with a security profile
// turned off, or bind mounting a path of the daemon's machine outside the
// roots. Exec mode runs in a container that exists already, so what it
// was given is what a session gets.
func checkExecConfinement(d *daemon, c container.InspectResponse, roots []string) error {
	if len(roots) == 0 {
		return nil
	}
	refuse := func(what string) error {
		return fmt.Errorf("%w: container %s %s, which the server's working-directory roots do not allow", shared.ErrPermissionDenied, strings.TrimPrefix(c.Name, "/"), what)
	}
	if h := c.HostConfig; h != nil {
		if err := checkConfinement(h.Privileged, h.CapAdd, string(h.NetworkMode)); err != nil {
			return fmt.Errorf("container %s: %w", strings.TrimPrefix(c.Name, "/"), err)
		}
		switch {
		case h.PidMode.IsHost():
			return refuse("shares the host's PID namespace")
		case h.IpcMode.IsHost():
			return refuse("shares the host's IPC namespace")
		case len(h.Devices) > 0 || len(h.DeviceRequests) > 0 || len(h.DeviceCgroupRules) > 0:
			return refuse("is given host devices")
		}
		for _, o := range h.SecurityOpt {
			if strings.HasSuffix(o, "unconfined") || strings.HasSuffix(o, "disable") {
				return refuse(fmt.Sprintf("runs with %q", o))
			}
		}
	}
	for _, m := range c.Mounts {
		if m.Type != mount.TypeBind {
			continue
		}
		if _, err := shared.CheckUnderRoots(roots, m.Source, d.local()); err != nil {
			return fmt.Errorf("container %s: bind mount of %s: %w", strings.TrimPrefix(c.Name, "/"), m.Source, err)
		}
	}
	return nil
}
