package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// With --workdir-root set, the server refuses (403, with the reason) a
// session whose worktree_path, or whose DOCKER environment's bind mounts,
// lie outside the roots, and creates nothing for it.
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
		"net-bind":   {"cap_add": []string{"CAP_NET_BIND_SERVICE"}}, // a default: allowed
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
		&container.HostConfig{Binds: []string{inside + ":/inside:ro"}})})

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
		id := srv.CreateSession(t, map[string]any{"environment_id": "exec-inside", "command": []string{"/bin/sh", "-c", "echo up; read x"}})
		srv.Attach(t, id).WaitOutput("up")
	})
	t.Run("docker, no worktree", func(t *testing.T) {
		id := srv.CreateSession(t, map[string]any{"environment_id": "dock", "command": []string{"/bin/sh", "-c", "echo up; read x"}})
		srv.Attach(t, id).WaitOutput("up")
	})
	eventually(t, 30*time.Second, "no container of the refused environment", func() bool {
		return len(labelled(t, cli, labelEnvironment+"=mount-root")) == 0
	})
}
