package main

// Tests through the real server: `ptyhost serve` as a subprocess with the
// HOST and DOCKER plugin binaries, driven over REST and WebSocket as a
// client would.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// startServer runs `ptyhost serve` on a free loopback port with its own
// data directory and the host and docker plugins, and waits until they
// run; the test's cleanup stops it (SIGTERM: it closes every session,
// which removes their containers).
func startServer(t *testing.T, flags ...string) *e2etest.Server {
	t.Helper()
	needDaemon(t)
	return e2etest.Start(t, e2etest.Options{Plugins: []string{"host", "docker"}, Args: flags,
		DropPTYHOSTEnv: true, WaitPlugins: true})
}

func TestServer(t *testing.T) {
	srv := startServer(t)
	cli := dockerClient(t)
	srv.CreateEnvironment(t, "dock", "DOCKER", map[string]any{"image": testImage(), "pull": "never"})
	noContainers := func(t *testing.T, label string) {
		t.Helper()
		eventually(t, 30*time.Second, "no container labelled "+label, func() bool { return len(labelled(t, cli, label)) == 0 })
	}

	t.Run("bad configs", func(t *testing.T) {
		tests := []struct {
			name   string
			config any
			reason string
		}{
			{"no image", map[string]any{}, `"image" or "container" is required`},
			{"unknown field", map[string]any{"image": "x", "imagee": "y"}, `unknown field "imagee"`},
			{"both", map[string]any{"image": "x", "container": "y"}, "exclusive"},
			{"bad pull", map[string]any{"image": "x", "pull": "sometimes"}, `pull "sometimes"`},
			{"bad memory", map[string]any{"image": "x", "memory": "lots"}, "memory"},
			{"relative mount", map[string]any{"image": "x", "mounts": []any{map[string]any{"source": "rel", "target": "/x"}}}, "not an absolute path"},
			{"exec with limits", map[string]any{"container": "c", "cpus": 1}, "cpus does not apply to exec mode"},
			{"http host", map[string]any{"image": "x", "host": "http://127.0.0.1:2375"}, "scheme http is not accepted"},
			{"unknown capability", map[string]any{"image": "x", "cap_add": []string{"NOT_A_CAP"}}, `"NOT_A_CAP" is not a Linux capability`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				code, out := srv.Request(t, "POST", "/api/v1/environments", map[string]any{"type": "DOCKER", "config": tt.config})
				if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), tt.reason) {
					t.Errorf("create = %d %v, want 400 mentioning %q", code, out, tt.reason)
				}
			})
		}
	})

	t.Run("type, read, size, exit", func(t *testing.T) {
		dir := t.TempDir()
		id := srv.CreateSession(t, map[string]any{"environment_id": "dock", "command": []string{"/bin/sh"},
			"worktree_path": dir, "cols": 91, "rows": 33, "env": map[string]string{"GREETING": "hej"}})
		tm := srv.Attach(t, id)
		tm.Send("stty size\r")
		tm.WaitOutput("33 91")
		tm.SendText(`{"type":"resize","cols":120,"rows":40}`)
		tm.WaitControl("resize")
		tm.Send("stty size\r")
		tm.WaitOutput("40 120")
		tm.Send("echo $((6*7)) $GREETING $TERM $COLORTERM $PWD; printf '\\360\\237\\231\\202 \\303\\251t\\303\\251\\n'\r")
		tm.WaitOutput("42 hej xterm-256color truecolor /workspace")
		tm.WaitOutput("🙂 été")
		if len(sessionContainers(t, cli, id)) != 1 {
			t.Error("no container labelled with the session")
		}
		tm.Send("exit 7\r")
		if m := tm.WaitControl("exit"); m.Code != 7 || m.Signal != "" {
			t.Errorf("exit message %v", m)
		}
		if rec := srv.Session(t, id); rec["status"] != "TERMINATED" || rec["exit_code"] != 7.0 {
			t.Errorf("session after exit: %v", rec)
		}
		noContainers(t, labelSession+"="+id)
	})

	t.Run("COLORTERM overridden by the session", func(t *testing.T) {
		id := srv.CreateSession(t, map[string]any{"environment_id": "dock", "env": map[string]string{"COLORTERM": "24bit"},
			"command": []string{"/bin/sh", "-c", "echo colorterm=$COLORTERM.; read x"}})
		srv.Attach(t, id).WaitOutput("colorterm=24bit.")
	})

	t.Run("signal", func(t *testing.T) {
		id := srv.CreateSession(t, map[string]any{"environment_id": "dock", "command": []string{"/bin/sh", "-c", "read x; kill -TERM $$"}})
		tm := srv.Attach(t, id)
		tm.Send("\r")
		if m := tm.WaitControl("exit"); m.Code != 143 || m.Signal != "SIGTERM" {
			t.Errorf("exit message %v", m)
		}
		if rec := srv.Session(t, id); rec["exit_signal"] != "SIGTERM" || rec["status"] != "TERMINATED" {
			t.Errorf("session after the signal: %v", rec)
		}
	})

	t.Run("destroy", func(t *testing.T) {
		id := srv.CreateSession(t, map[string]any{"environment_id": "dock", "command": []string{"/bin/sh", "-c", "echo ready; sleep 100000"}})
		tm := srv.Attach(t, id)
		tm.WaitOutput("ready")
		if code, _ := srv.Request(t, "DELETE", "/api/v1/sessions/"+id, nil); code != http.StatusNoContent {
			t.Fatalf("delete: %d", code)
		}
		noContainers(t, labelSession+"="+id)
		if rec := srv.Session(t, id); rec["status"] != "TERMINATED" {
			t.Errorf("session after destroy: %v", rec)
		}
	})

	t.Run("missing image, pull never", func(t *testing.T) {
		srv.CreateEnvironment(t, "missing", "DOCKER", map[string]any{"image": "ptyhost-test-missing:none", "pull": "never"})
		code, out := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": "missing", "command": []string{"/bin/true"}})
		if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "image ptyhost-test-missing:none not present and pull is never") {
			t.Errorf("create = %d %v", code, out)
		}
		if left := labelled(t, cli, labelEnvironment+"=missing"); len(left) != 0 {
			t.Errorf("%d container(s) left", len(left))
		}
	})

	t.Run("unreachable daemon", func(t *testing.T) {
		srv.CreateEnvironment(t, "gone", "DOCKER", map[string]any{"image": testImage(), "host": "unix:///nonexistent/docker.sock"})
		code, out := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": "gone"})
		if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(out["error"]), "/nonexistent/docker.sock") {
			t.Errorf("create = %d %v, want 503 naming the daemon", code, out)
		}
	})

	t.Run("exec into a running container", func(t *testing.T) {
		target := startTarget(t, cli)
		srv.CreateEnvironment(t, "exec", "DOCKER", map[string]any{"container": target})
		id := srv.CreateSession(t, map[string]any{"environment_id": "exec", "cols": 77, "rows": 22})
		tm := srv.Attach(t, id)
		tm.Send("echo exec-$((1+1)); stty size; sleep 100000\r")
		tm.WaitOutput("exec-2")
		tm.WaitOutput("22 77")
		if code, _ := srv.Request(t, "DELETE", "/api/v1/sessions/"+id, nil); code != http.StatusNoContent {
			t.Fatalf("delete: %d", code)
		}
		// The exec'd shell and its sleep are gone; docker-init and the
		// container's own sleep remain.
		eventually(t, 30*time.Second, "the exec'd processes end", func() bool {
			top, err := cli.ContainerTop(context.Background(), target, client.ContainerTopOptions{})
			return err == nil && len(top.Processes) == 2
		})
		if !targetRunning(t, cli, target) {
			t.Error("ending the session stopped the container")
		}
	})

	t.Run("20 concurrent sessions", func(t *testing.T) {
		const n = 20
		srv.CreateEnvironment(t, "many", "DOCKER", map[string]any{"image": testImage(), "pull": "never"})
		ids := make([]string, n)
		errs := make(chan error, n)
		start := time.Now()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				code, out, err := srv.Do("POST", "/api/v1/sessions", map[string]any{
					"environment_id": "many", "command": []string{"/bin/sh", "-c", "echo hi; read x"}})
				if code != http.StatusCreated {
					errs <- fmt.Errorf("create %d: %d %v %v", i, code, out, err)
					return
				}
				ids[i] = out["id"].(string)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		t.Logf("%d sessions created in %v", n, time.Since(start))
		if got := len(labelled(t, cli, labelEnvironment+"=many")); got != n {
			t.Errorf("%d containers for %d sessions", got, n)
		}
		for _, id := range ids {
			if id == "" {
				continue
			}
			wg.Go(func() {
				if code, _, err := srv.Do("DELETE", "/api/v1/sessions/"+id, nil); code != http.StatusNoContent {
					t.Errorf("delete %s: %d %v", id, code, err)
				}
			})
		}
		wg.Wait()
		noContainers(t, labelEnvironment+"=many")
	})
}
