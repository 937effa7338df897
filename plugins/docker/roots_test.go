package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/shared"
)

// With --workdir-root set, the server refuses (403, with the reason) a
// session whose worktree_path, or whose DOCKER environment's bind mounts,
// lie outside the roots, or whose container would reach the host past
// them another way, and creates nothing for it.
func TestServerWorkdirRoots(t *testing.T) {
	cli := dockerClient(t)
	base := t.TempDir()
	root := filepath.Join(base, "root")
	inside := filepath.Join(root, "proj")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{inside, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	escape := filepath.Join(root, "escape") // a link inside the root, leading out
	if err := os.Symlink(outside, escape); err != nil {
		t.Fatal(err)
	}
	// A container in the host's network and PID namespaces, shareable
	// IPC, and local volumes bind mounting a directory outside the roots
	// and one inside.
	hostNet := startTargetWith(t, cli, "-hostnet", nil, &container.HostConfig{NetworkMode: "host", PidMode: "host", IpcMode: "shareable"})
	hostNetInfo, err := cli.ContainerInspect(t.Context(), hostNet, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hostNetID := hostNetInfo.Container.ID // what the daemon keeps of container:NAME
	volOutside := bindVolume(t, cli, "outside", outside)
	volInside := bindVolume(t, cli, "inside", inside)
	srv := startServer(t, "--workdir-root", root)
	srv.CreateEnvironment(t, "dock", "DOCKER", map[string]any{"image": testImage(), "pull": "never"})
	srv.CreateEnvironment(t, "mount-root", "DOCKER", map[string]any{"image": testImage(), "pull": "never",
		"mounts": []any{map[string]any{"source": "/", "target": "/host", "read_only": true}}})
	srv.CreateEnvironment(t, "mount-inside", "DOCKER", map[string]any{"image": testImage(), "pull": "never",
		"mounts": []any{map[string]any{"source": inside, "target": "/data", "read_only": true}}})
	// What would reach the host past the roots without a mount.
	for name, extra := range map[string]map[string]any{
		"privileged": {"privileged": true},
		"handles":    {"cap_add": []string{"dac_read_search"}},
		"all-caps":   {"cap_add": []string{"NET_BIND_SERVICE", "ALL"}},
		"host-net":   {"network": "host"},
		// The host's network namespace through a container that has it.
		"net-via-container": {"network": "container:" + hostNet},
		"net-bind":          {"cap_add": []string{"CAP_NET_BIND_SERVICE"}}, // a default: allowed
	} {
		extra["image"], extra["pull"] = testImage(), "never"
		srv.CreateEnvironment(t, name, "DOCKER", extra)
	}
	// Exec mode into containers made with more than the roots allow.
	srv.CreateEnvironment(t, "exec-handles", "DOCKER", map[string]any{"container": startTargetWith(t, cli, "-handles", nil,
		&container.HostConfig{CapAdd: []string{"DAC_READ_SEARCH"}})})
	srv.CreateEnvironment(t, "exec-outside", "DOCKER", map[string]any{"container": startTargetWith(t, cli, "-outside", nil,
		&container.HostConfig{Binds: []string{outside + ":/outside:ro"}})})
	srv.CreateEnvironment(t, "exec-inside", "DOCKER", map[string]any{"container": startTargetWith(t, cli, "-inside", nil,
		&container.HostConfig{Binds: []string{inside + ":/inside:ro"},
			Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: volInside, Target: "/vol"}, {Type: mount.TypeVolume, Target: "/anon"}}})})
	srv.CreateEnvironment(t, "exec-net-via-container", "DOCKER", map[string]any{"container": startTargetWith(t, cli, "-joined-net", nil,
		&container.HostConfig{NetworkMode: container.NetworkMode("container:" + hostNet)})})
	srv.CreateEnvironment(t, "exec-pid-via-container", "DOCKER", map[string]any{"container": startTargetWith(t, cli, "-joined-pid", nil,
		&container.HostConfig{PidMode: container.PidMode("container:" + hostNet)})})
	srv.CreateEnvironment(t, "exec-ipc-via-container", "DOCKER", map[string]any{"container": startTargetWith(t, cli, "-joined-ipc", nil,
		&container.HostConfig{IpcMode: container.IpcMode("container:" + hostNet)})})
	srv.CreateEnvironment(t, "exec-volume", "DOCKER", map[string]any{"container": startTargetWith(t, cli, "-vol", nil,
		&container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: volOutside, Target: "/vol"}}})})
	srv.CreateEnvironment(t, "exec-spc", "DOCKER", map[string]any{"container": startTargetWith(t, cli, "-spc", nil,
		&container.HostConfig{SecurityOpt: []string{"label=type:spc_t"}})})
	srv.CreateEnvironment(t, "exec-seccomp", "DOCKER", map[string]any{"container": startTargetWith(t, cli, "-seccomp", nil,
		&container.HostConfig{SecurityOpt: []string{`seccomp={"defaultAction": "SCMP_ACT_ALLOW"}`}})})

	refused := []struct {
		name, env, dir string
		reason         string
	}{
		{"host, outside", "host", outside, "outside the working-directory roots"},
		{"host, dot-dot", "host", inside + "/../../outside", `".." element`},
		{"host, link out of the root", "host", escape, "resolves to " + outside},
		{"host, relative", "host", "proj", "not an absolute path"},
		{"docker, outside", "dock", outside, "outside the working-directory roots"},
		{"docker, link out of the root", "dock", escape, "worktree mount"},
		{"docker, mounting /", "mount-root", "", `mounts[0]: permission denied: "/" is outside the working-directory roots`},
		{"docker, mounting / with a worktree inside", "mount-root", inside, "mounts[0]"},
		{"docker, privileged", "privileged", "", "privileged is not allowed while the server restricts sessions to working-directory roots"},
		{"docker, DAC_READ_SEARCH", "handles", "", `cap_add "dac_read_search" (beyond Docker's default capabilities) is not allowed`},
		{"docker, ALL", "all-caps", "", `cap_add "ALL"`},
		{"docker, the host's network", "host-net", "", `network "host" is not allowed`},
		{"docker exec, a container with DAC_READ_SEARCH", "exec-handles", "", `DAC_READ_SEARCH" (beyond Docker's default capabilities)`},
		{"docker exec, a container mounting a path outside", "exec-outside", "", "bind mount of " + outside + ": permission denied"},
		{"docker, another container's network", "net-via-container", "", `network "container:` + hostNet + `" (another container's namespace) is not allowed`},
		{"docker exec, a container in another's network", "exec-net-via-container", "", `network "container:` + hostNetID + `" (another container's namespace) is not allowed`},
		{"docker exec, a container in another's PID namespace", "exec-pid-via-container", "", "shares the PID namespace of container " + hostNetID},
		{"docker exec, a container in another's IPC namespace", "exec-ipc-via-container", "", "shares the IPC namespace of container " + hostNetID},
		{"docker exec, a volume binding a path outside", "exec-volume", "", "volume " + volOutside + " bind mounts " + outside + ": permission denied"},
		{"docker exec, SELinux's spc_t", "exec-spc", "", `runs with "label=type:spc_t"`},
		{"docker exec, an inline seccomp profile", "exec-seccomp", "", "runs with its own seccomp profile"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{"environment_id": tt.env, "command": []string{"/bin/true"}}
			if tt.dir != "" {
				body["worktree_path"] = tt.dir
			}
			code, out := srv.Request(t, "POST", "/api/v1/sessions", body)
			if code != http.StatusForbidden || !strings.Contains(fmt.Sprint(out["error"]), tt.reason) {
				t.Errorf("create = %d %v, want 403 mentioning %q", code, out, tt.reason)
			}
			if left := labelled(t, cli, labelEnvironment+"="+tt.env); len(left) != 0 {
				t.Errorf("%d container(s) left for the refused session", len(left))
			}
		})
	}

	t.Run("host, inside", func(t *testing.T) {
		id := srv.CreateSession(t, map[string]any{"environment_id": "host", "worktree_path": inside,
			"command": []string{"/bin/sh", "-c", "pwd; read x"}})
		srv.Attach(t, id).WaitOutput(inside)
	})
	t.Run("docker, inside", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(inside, "marker"), []byte("in-root"), 0o644); err != nil {
			t.Fatal(err)
		}
		id := srv.CreateSession(t, map[string]any{"environment_id": "mount-inside", "worktree_path": inside,
			"command": []string{"/bin/sh", "-c", "echo $(cat /workspace/marker)-$(cat /data/marker); read x"}})
		srv.Attach(t, id).WaitOutput("in-root-in-root")
	})
	t.Run("docker, a default capability", func(t *testing.T) {
		id := srv.CreateSession(t, map[string]any{"environment_id": "net-bind", "command": []string{"/bin/sh", "-c", "echo up; read x"}})
		srv.Attach(t, id).WaitOutput("up")
	})
	t.Run("docker exec, a container mounting a path inside", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(inside, "marker"), []byte("in-root"), 0o644); err != nil {
			t.Fatal(err)
		}
		id := srv.CreateSession(t, map[string]any{"environment_id": "exec-inside",
			"command": []string{"/bin/sh", "-c", "echo $(cat /inside/marker)-$(cat /vol/marker); read x"}})
		srv.Attach(t, id).WaitOutput("in-root-in-root")
	})
	t.Run("docker, no worktree", func(t *testing.T) {
		id := srv.CreateSession(t, map[string]any{"environment_id": "dock", "command": []string{"/bin/sh", "-c", "echo up; read x"}})
		srv.Attach(t, id).WaitOutput("up")
	})
	eventually(t, 30*time.Second, "no container of the refused environment", func() bool {
		return len(labelled(t, cli, labelEnvironment+"=mount-root")) == 0
	})
}

// bindVolume creates a volume of the local driver that bind mounts dir
// (type=none, o=bind, device=dir), named after the test and what; the
// test's cleanup removes it.
func bindVolume(t *testing.T, cli *client.Client, what, dir string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := containerNameFor("vol-" + t.Name() + "-" + what)
	if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Driver: "local",
		DriverOpts: map[string]string{"type": "none", "o": "bind", "device": dir}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true})
	})
	return name
}

// With roots set, a volume an exec target mounts must not reach the host
// past them: a local volume may bind only a path under the roots, may be
// a tmpfs or the daemon's own directory, and nothing else; volumes of
// other drivers are refused without asking the daemon.
func TestCheckVolume(t *testing.T) {
	cli := dockerClient(t)
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{root, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := &daemon{api: cli}
	local := func(name string, opts map[string]string) container.MountPoint {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		name = containerNameFor("vol-" + t.Name() + "-" + name)
		if _, err := cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Driver: "local", DriverOpts: opts}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true})
		})
		return container.MountPoint{Type: mount.TypeVolume, Name: name, Driver: "local"}
	}
	for _, tt := range []struct {
		name  string
		m     container.MountPoint
		refus string // what the error says; "" is allowed
	}{
		{"plain", local("plain", nil), ""},
		{"tmpfs", local("tmpfs", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}), ""},
		{"bind inside", local("inside", map[string]string{"type": "none", "o": "bind", "device": root}), ""},
		{"bind outside", local("outside", map[string]string{"type": "none", "o": "bind", "device": outside}), "bind mounts " + outside + ": permission denied"},
		{"rbind outside", local("routside", map[string]string{"type": "none", "o": "ro,rbind", "device": outside}), "bind mounts " + outside + ": permission denied"},
		{"a device", local("device", map[string]string{"type": "ext4", "device": "/dev/nosuch"}), `mounts "/dev/nosuch" of type "ext4"`},
		{"another driver", container.MountPoint{Type: mount.TypeVolume, Name: "x", Driver: "some-plugin"}, `volume x is of the "some-plugin" driver`},
		{"a cluster volume", container.MountPoint{Type: mount.TypeCluster, Name: "x", Driver: "csi"}, `volume x is of the "csi" driver`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkVolume(t.Context(), d, tt.m, []string{root})
			switch {
			case tt.refus == "" && err != nil:
				t.Errorf("checkVolume = %v, want nil", err)
			case tt.refus != "" && (!errors.Is(err, shared.ErrPermissionDenied) || !strings.Contains(fmt.Sprint(err), tt.refus)):
				t.Errorf("checkVolume = %v, want permission denied mentioning %q", err, tt.refus)
			}
		})
	}
}

// With roots set, an exec target's security options must keep Docker's
// profiles: turned off, SELinux's spc_t, or a seccomp profile of its own
// are refused; the rest is allowed.
func TestCheckSecurityOpt(t *testing.T) {
	for o, refused := range map[string]bool{
		"seccomp=unconfined":            true,
		"seccomp:unconfined":            true,
		"apparmor=unconfined":           true,
		"label=disable":                 true,
		"label=type:spc_t":              true,
		"label:type:spc_t":              true,
		`seccomp={"defaultAction": ""}`: true,
		`seccomp:{"defaultAction": ""}`: true,
		"seccomp= {}":                   true,
		"no-new-privileges":             false,
		"no-new-privileges=true":        false,
		"apparmor=docker-default":       false,
		"label=level:s0:c100,c200":      false,
		"label=type:container_t":        false,
	} {
		if got := checkSecurityOpt(o); (got != "") != refused {
			t.Errorf("checkSecurityOpt(%q) = %q, want refused %v", o, got, refused)
		}
	}
}
