package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// inspectSession returns the one container of the session.
func inspectSession(t *testing.T, cli *client.Client, sessionID string) container.InspectResponse {
	t.Helper()
	list := sessionContainers(t, cli, sessionID)
	if len(list) != 1 {
		t.Fatalf("%d containers labelled with the session, want 1", len(list))
	}
	res, err := cli.ContainerInspect(t.Context(), list[0].ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Container
}

// isDirect reports whether the container runs pty-init with the plugin
// binary mounted read-only, and no daemon TTY.
func isDirect(c container.InspectResponse) bool {
	mounted := slices.ContainsFunc(c.Mounts, func(m container.MountPoint) bool {
		return m.Destination == initPath && !m.RW
	})
	return mounted && !c.Config.Tty && slices.Equal(c.Config.Entrypoint[:2], []string{initPath, initArg})
}

// runsOnDaemonTerminal spawns session id of env with cfg, whose terminal
// must be the daemon's, and checks that it takes input, has the session's
// size and exits 0.
func runsOnDaemonTerminal(ctx context.Context, t *testing.T, env shared.Environment, cli *client.Client, id string, cfg json.RawMessage) {
	t.Helper()
	p, err := env.Spawn(ctx, request(id, cfg, "/bin/sh", "-c", `read x; echo "[$x|$(stty size)]"`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	if c := inspectSession(t, cli, id); isDirect(c) || !c.Config.Tty {
		t.Errorf("not the daemon's terminal: tty %v, entrypoint %q", c.Config.Tty, c.Config.Entrypoint)
	}
	term.Write("typed\r")
	term.Expect(ctx, "[typed|24 80]")
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v", st)
	}
}

// Through the real plugin binary, a session's container holds its own
// terminal, which the plugin reads: the container's user (not root) gets a
// terminal of the session's size from the first instruction, resizes
// reach it, and the exit code comes back.
func TestDirectTerminal(t *testing.T) {
	env := loadDocker(t)
	cli := dockerClient(t)
	ctx := testContext(t, 60*time.Second)
	id := fmt.Sprintf("direct-%d", time.Now().UnixNano())
	req := request(id, imageConfig(map[string]any{"user": "1000"}), "/bin/sh", "-c",
		`echo "[$(tty)|$(stty size)|$(id -u)]"; read x; echo "[$(stty size)]"; exit 7`)
	req.Size = sizeOf(101, 33)
	p, err := env.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "[/dev/pts/0|33 101|1000]")
	if c := inspectSession(t, cli, id); !isDirect(c) {
		t.Errorf("not a direct terminal: tty %v, entrypoint %q, mounts %+v", c.Config.Tty, c.Config.Entrypoint, c.Mounts)
	}
	if err := p.Resize(ctx, sizeOf(90, 20)); err != nil {
		t.Fatal(err)
	}
	term.Write("\r")
	term.Expect(ctx, "[20 90]")
	if st := term.Wait(ctx); st.Code != 7 {
		t.Errorf("exit status %+v, want code 7", st)
	}
	term.Close()
	if left := sessionContainers(t, cli, id); len(left) != 0 {
		t.Errorf("%d container(s) left after Close", len(left))
	}
}

// "terminal": "daemon" keeps the daemon's TTY and attach stream.
func TestDaemonTerminal(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	id := fmt.Sprintf("daemon-tty-%d", time.Now().UnixNano())
	runsOnDaemonTerminal(ctx, t, loadDocker(t), dockerClient(t), id, imageConfig(map[string]any{"terminal": "daemon"}))
}

// The harness in process, with the static plugin binary as pty-init: the
// direct terminal under leakcheck, and no handoff socket left.
func TestConformanceInProcessDirect(t *testing.T) {
	needDaemon(t)
	env := New(nil)
	bin := pluginBinary(t)
	env.initBinary = func() (string, error) { return bin, nil }
	env.runDir = t.TempDir()
	stale := staleHandoff(t, env.runDir) // swept before the first handoff
	t.Cleanup(env.Close)
	t.Run("harness", func(t *testing.T) {
		sharedtest.Run(t, env, sharedtest.Config{
			Config:    imageConfig(map[string]any{"terminal": "direct"}),
			BadConfig: json.RawMessage(`{"image": ""}`),
			Dir:       t.TempDir(),
			Timeout:   60 * time.Second,
			Skip:      map[string]string{"duplicate_id": "session ids are the gRPC server's business"},
		})
	})
	left, err := os.ReadDir(env.runDir)
	if err != nil || len(left) != 0 {
		t.Errorf("left in the run directory: %v, %v (%s was a dead plugin's)", left, err, filepath.Base(stale))
	}
}

// staleHandoff makes a handoff directory under parent as a plugin process
// that has ended would have left it an hour ago, with its socket, and
// returns it.
func staleHandoff(t *testing.T, parent string) string {
	t.Helper()
	dir, err := os.MkdirTemp(parent, handoffName(deadOwner(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pty.sock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(dir, old, old); err != nil {
		t.Fatal(err)
	}
	return dir
}

// deadOwner returns the ownerID of a process of this machine that has
// ended.
func deadOwner(t *testing.T) string {
	t.Helper()
	m := thisMachine()
	return fmt.Sprintf("%s/%d/1/%s", m.host, deadPid(t), m.boot)
}

// Where the binary cannot run in a container, the default falls back to
// the daemon's terminal, and "terminal": "direct" is a config error that
// says why; nothing is created either way but the fallback's container.
func TestDirectUnavailable(t *testing.T) {
	needDaemon(t)
	cli := dockerClient(t)
	ctx := testContext(t, 60*time.Second)
	env := New(nil)
	t.Cleanup(env.Close)
	env.initBinary = func() (string, error) {
		return "", errors.New("/opt/plugin is dynamically linked (build it with CGO_ENABLED=0, as make build does)")
	}

	id := fmt.Sprintf("direct-refused-%d", time.Now().UnixNano())
	_, err := env.Spawn(ctx, request(id, imageConfig(map[string]any{"terminal": "direct"}), "/bin/true"))
	if !errors.Is(err, shared.ErrInvalidConfig) || !strings.Contains(err.Error(), "dynamically linked") {
		t.Errorf("Spawn with terminal direct: %v", err)
	}
	if left := sessionContainers(t, cli, id); len(left) != 0 {
		t.Errorf("%d container(s) left", len(left))
	}

	runsOnDaemonTerminal(ctx, t, env, cli, fmt.Sprintf("direct-fallback-%d", time.Now().UnixNano()), imageConfig(nil))
}

// A direct terminal that fails at the start — no handoff socket (its
// directory's path is too long for a unix socket), or a pty-init the
// container cannot run (here a dynamically linked binary) — is the
// daemon's terminal by default, and a 503 with the reason with
// "terminal": "direct"; nothing is left behind either way.
func TestDirectFailsAtStart(t *testing.T) {
	needDaemon(t)
	cli := dockerClient(t)
	longDir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	if err := os.Mkdir(longDir, 0o700); err != nil {
		t.Fatal(err)
	}
	bin := pluginBinary(t)
	for _, tt := range []struct {
		name, bin, runDir, want string
	}{
		{"no socket", bin, longDir, "no handoff socket"},
		{"pty-init cannot run", "/bin/true", t.TempDir(), "no direct terminal"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.bin == "/bin/true" && checkStatic("/bin/true") == nil {
				t.Fatal("this test needs a dynamically linked /bin/true")
			}
			ctx := testContext(t, 60*time.Second)
			env := New(nil)
			t.Cleanup(env.Close)
			env.initBinary = func() (string, error) { return tt.bin, nil }
			env.runDir = tt.runDir

			id := fmt.Sprintf("direct-fails-%d", time.Now().UnixNano())
			_, err := env.Spawn(ctx, request(id, imageConfig(map[string]any{"terminal": "direct"}), "/bin/true"))
			if !errors.Is(err, shared.ErrUnavailable) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Spawn with terminal direct: %v, want ErrUnavailable saying %q", err, tt.want)
			}
			if left := sessionContainers(t, cli, id); len(left) != 0 {
				t.Errorf("%d container(s) left", len(left))
			}

			runsOnDaemonTerminal(ctx, t, env, cli, fmt.Sprintf("direct-fails-fallback-%d", time.Now().UnixNano()), imageConfig(nil))
			if left, err := os.ReadDir(env.runDir); err != nil || len(left) != 0 {
				t.Errorf("left in the run directory: %v, %v", left, err)
			}
			// The failure is remembered for the daemon: the next session
			// goes to the daemon's terminal without trying (one try for
			// the explicit session, one for the first fallback).
			runsOnDaemonTerminal(ctx, t, env, cli, fmt.Sprintf("direct-fails-remembered-%d", time.Now().UnixNano()), imageConfig(nil))
			if n := env.directTries.Load(); n != 2 {
				t.Errorf("%d direct terminals tried, want 2: the third session should not have tried", n)
			}
			// Named explicitly, it is tried again, and once it works the
			// daemon's sessions try it again too.
			env.initBinary = func() (string, error) { return bin, nil }
			env.runDir = t.TempDir()
			p, err := env.Spawn(ctx, request(fmt.Sprintf("direct-works-%d", time.Now().UnixNano()), imageConfig(map[string]any{"terminal": "direct"}), "/bin/true"))
			if err != nil {
				t.Fatalf("Spawn with terminal direct once it can work: %v", err)
			}
			io.ReadAll(p)
			if st, err := p.Wait(ctx); err != nil || st.Code != 0 {
				t.Errorf("the direct session: %+v, %v; want exit 0", st, err)
			}
			p.Close()
			d, err := env.daemons.get("")
			if err != nil {
				t.Fatal(err)
			}
			if why := d.noDirect(time.Now()); why != nil {
				t.Errorf("the failure is still remembered after a direct terminal worked: %v", why)
			}
		})
	}
}
