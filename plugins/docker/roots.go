package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

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
	if err := checkLogDriver(cfg.LogDriver); err != nil {
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
// root), one in the host's network namespace (the host's loopback
// services and abstract sockets), or one in another container's network
// namespace, which may be the host's: all are refused rather than
// following container:NAME to what that container was given. The error
// wraps shared.ErrPermissionDenied.
func checkConfinement(privileged bool, capAdd []string, network string) error {
	refuse := func(what string) error { return refusedUnderRoots(what, "it would reach the host past them") }
	if privileged {
		return refuse("privileged")
	}
	for _, c := range capAdd {
		if name := strings.TrimPrefix(strings.ToUpper(c), "CAP_"); !dockerDefaultCaps[name] {
			return refuse(fmt.Sprintf("cap_add %q (beyond Docker's default capabilities)", c))
		}
	}
	switch mode := container.NetworkMode(network); {
	case mode.IsHost():
		return refuse(`network "host"`)
	case mode.IsContainer():
		return refuse(fmt.Sprintf("network %q (another container's namespace)", network))
	}
	return nil
}

// rootsLogDrivers are the log drivers allowed while roots are set: those
// that keep the output on the daemon's disk. The others send it where
// their options say (syslog-address, fluentd-address, gelf-address, a
// splunk-url, the host's journal), which the daemon, as root in the host's
// network namespace, reaches for a container that has no network.
var rootsLogDrivers = []string{"", "none", "json-file", "local"}

// checkLogDriver refuses, while roots are set, a log driver that sends the
// output past them. The error wraps shared.ErrPermissionDenied.
func checkLogDriver(driver string) error {
	if slices.Contains(rootsLogDrivers, driver) {
		return nil
	}
	return refusedUnderRoots(fmt.Sprintf("log_driver %q", driver), "it sends the output past them (none, json-file and local are)")
}

// refusedUnderRoots is the error of an environment setting (what) refused
// while roots are set, and why: it wraps shared.ErrPermissionDenied.
func refusedUnderRoots(what, why string) error {
	return fmt.Errorf("%w: %s is not allowed while the server restricts sessions to working-directory roots: %s", shared.ErrPermissionDenied, what, why)
}

// checkHostPath checks a path of the daemon's machine that an existing
// container mounts against the roots. On this machine (local) the path
// must also be what it resolves to below the root it was written under: a
// symbolic link there (in a worktree, where sessions may change it) may
// have pointed elsewhere when the mount was made. Links in a root's own
// path, the operator's, are followed.
func checkHostPath(roots []string, path string, local bool) error {
	resolved, err := shared.CheckUnderRoots(roots, path, local)
	if err != nil || !local {
		return err
	}
	clean := filepath.Clean(path)
	for _, r := range roots {
		rel, err := filepath.Rel(filepath.Clean(r), clean)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		if real, err := filepath.EvalSymlinks(r); err == nil && filepath.Join(real, rel) == resolved {
			return nil
		}
	}
	return fmt.Errorf("%w: %s goes through a symbolic link (to %s), so what was mounted from it cannot be told from the roots", shared.ErrPermissionDenied, path, resolved)
}

// dockerProcPaths are paths of /proc that Docker makes read-only or masks
// in every container unless told not to (--security-opt
// systempaths=unconfined, which leaves no other trace): writable, they let
// the container's root change the host's kernel settings (a core_pattern
// runs a program as root on the host).
var dockerProcPaths = struct{ readonly, masked []string }{
	readonly: []string{"/proc/sys", "/proc/sysrq-trigger"},
	masked:   []string{"/proc/kcore"},
}

// checkExecConfinement refuses, while roots are set, exec mode into a
// container made with more than checkConfinement allows, or sharing the
// host's or another container's PID or IPC namespace, given devices, with
// a security profile turned off or replaced (checkSecurityOpt), or
// mounting a path of the daemon's machine outside the roots, directly or
// through a volume (checkVolume). Exec mode runs in a container that
// exists already, so what it was given is what a session gets.
func checkExecConfinement(ctx context.Context, d *daemon, c container.InspectResponse, roots []string) error {
	if len(roots) == 0 {
		return nil
	}
	name := strings.TrimPrefix(c.Name, "/")
	refuse := func(what string) error {
		return fmt.Errorf("%w: container %s %s, which the server's working-directory roots do not allow", shared.ErrPermissionDenied, name, what)
	}
	if h := c.HostConfig; h != nil {
		if err := checkConfinement(h.Privileged, h.CapAdd, string(h.NetworkMode)); err != nil {
			return fmt.Errorf("container %s: %w", name, err)
		}
		switch {
		case h.PidMode.IsHost():
			return refuse("shares the host's PID namespace")
		case h.PidMode.IsContainer():
			return refuse("shares the PID namespace of container " + h.PidMode.Container())
		case h.IpcMode.IsHost():
			return refuse("shares the host's IPC namespace")
		case h.IpcMode.IsContainer():
			return refuse("shares the IPC namespace of container " + h.IpcMode.Container())
		case len(h.Devices) > 0 || len(h.DeviceRequests) > 0 || len(h.DeviceCgroupRules) > 0:
			return refuse("is given host devices")
		}
		for _, o := range h.SecurityOpt {
			if what := checkSecurityOpt(o); what != "" {
				return refuse(what)
			}
		}
		// A daemon that reports the lists reports Docker's defaults in
		// them, unless systempaths=unconfined emptied them.
		for _, p := range dockerProcPaths.readonly {
			if h.ReadonlyPaths != nil && !slices.Contains(h.ReadonlyPaths, p) {
				return refuse("has " + p + " writable (systempaths=unconfined)")
			}
		}
		for _, p := range dockerProcPaths.masked {
			if h.MaskedPaths != nil && !slices.Contains(h.MaskedPaths, p) {
				return refuse("has " + p + " unmasked (systempaths=unconfined)")
			}
		}
	}
	for _, m := range c.Mounts {
		switch m.Type {
		case mount.TypeBind:
			if err := checkHostPath(roots, m.Source, d.local()); err != nil {
				return fmt.Errorf("container %s: bind mount of %s: %w", name, m.Source, err)
			}
		case mount.TypeVolume, mount.TypeCluster:
			if err := checkVolume(ctx, d, m, roots); err != nil {
				return fmt.Errorf("container %s: %w", name, err)
			}
		}
	}
	return nil
}

// checkSecurityOpt returns what is wrong with a security option (o, as
// --security-opt takes it: key=value, or the older key:value) while roots
// are set, or "" when nothing is: a profile turned off (seccomp, AppArmor
// or SELinux labels "unconfined" or "disable"), SELinux's type spc_t (a
// container unconfined, as privileged ones run), or a seccomp profile of
// the container's own, which the daemon is given inline and which may
// allow what Docker's default profile blocks.
func checkSecurityOpt(o string) string {
	if strings.HasSuffix(o, "unconfined") || strings.HasSuffix(o, "disable") {
		return fmt.Sprintf("runs with %q", o)
	}
	key, value := o, ""
	if i := strings.IndexAny(o, "=:"); i >= 0 {
		key, value = o[:i], o[i+1:]
	}
	switch {
	case key == "label" && value == "type:spc_t":
		return fmt.Sprintf("runs with %q", o)
	case key == "seccomp" && strings.HasPrefix(strings.TrimSpace(value), "{"):
		return "runs with its own seccomp profile"
	}
	return ""
}

// checkVolume checks, while roots are set, a volume the container mounts
// (m). A volume of the local driver is a directory the daemon keeps, or,
// with options, what they name: one that bind mounts a path of the
// daemon's machine (o=bind or rbind, the path in device) must bind one
// under the roots, one that is a tmpfs is allowed, and any other device
// or remote file system is refused, as is a volume of any other driver,
// which can mount anything and does not tell what. The
// error wraps shared.ErrPermissionDenied, or is the daemon's failing to
// tell the volume's options.
func checkVolume(ctx context.Context, d *daemon, m container.MountPoint, roots []string) error {
	refuse := func(what string) error {
		return fmt.Errorf("%w: volume %s %s, which the server's working-directory roots do not allow", shared.ErrPermissionDenied, m.Name, what)
	}
	if m.Type != mount.TypeVolume || m.Driver != "local" {
		return refuse(fmt.Sprintf("is of the %q driver", m.Driver))
	}
	res, err := d.api.VolumeInspect(ctx, m.Name, client.VolumeInspectOptions{})
	if err != nil {
		return d.classify("inspect volume "+m.Name, err)
	}
	opts := res.Volume.Options
	device, fsType := opts["device"], opts["type"]
	switch {
	case slices.ContainsFunc(strings.Split(opts["o"], ","), func(o string) bool {
		o = strings.TrimSpace(o)
		return o == "bind" || o == "rbind"
	}):
		if err := checkHostPath(roots, device, d.local()); err != nil {
			return fmt.Errorf("volume %s bind mounts %s: %w", m.Name, device, err)
		}
	case fsType == "tmpfs":
	case device != "" || fsType != "":
		return refuse(fmt.Sprintf("mounts %q of type %q", device, fsType))
	}
	return nil
}
