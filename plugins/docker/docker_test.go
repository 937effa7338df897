package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// The conformance harness through the real plugin binary: a container per
// session.
func TestConformance(t *testing.T) {
	env := loadDocker(t)
	sharedtest.Run(t, env, sharedtest.Config{
		Config:    imageConfig(map[string]any{"env": map[string]string{"FROM_CONFIG": "yes"}}),
		BadConfig: json.RawMessage(fmt.Sprintf(`{"imag": %q}`, testImage())),
		Dir:       t.TempDir(),
		Timeout:   60 * time.Second,
	})
}

// The implementation without the glue passes too (but for the id
// bookkeeping, which is the glue's); leakcheck sees its goroutines here.
// This one runs the daemon's terminal; TestConformanceInProcessDirect the
// direct one.
func TestConformanceInProcess(t *testing.T) {
	needDaemon(t)
	env := New(nil)
	t.Cleanup(env.Close)
	sharedtest.Run(t, env, sharedtest.Config{
		Config:    imageConfig(map[string]any{"terminal": "daemon"}),
		BadConfig: json.RawMessage(`{"image": ""}`),
		Dir:       t.TempDir(),
		Timeout:   60 * time.Second,
		Skip:      map[string]string{"duplicate_id": "session ids are the gRPC server's business"},
	})
}

// The same, exec'd into a running container, which every session leaves
// running.
func TestConformanceExec(t *testing.T) {
	env := loadDocker(t)
	cli := dockerClient(t)
	target := startTarget(t, cli)
	t.Run("harness", func(t *testing.T) {
		sharedtest.Run(t, env, sharedtest.Config{
			Config:    json.RawMessage(fmt.Sprintf(`{"container": %q}`, target)),
			BadConfig: json.RawMessage(fmt.Sprintf(`{"container": %q, "memory": "1g"}`, target)),
			Timeout:   60 * time.Second,
		})
	})
	if !targetRunning(t, cli, target) {
		t.Error("the exec target stopped")
	}
}

func TestSpawnErrors(t *testing.T) {
	env := loadDocker(t)
	cli := dockerClient(t)
	stopped := startTarget(t, cli)
	ctx := testContext(t, 60*time.Second)
	if _, err := cli.ContainerStop(ctx, stopped, client.ContainerStopOptions{}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		config  json.RawMessage
		edit    func(*shared.SpawnRequest)
		want    error
		message string
	}{
		{"missing image, pull never", json.RawMessage(`{"image": "ptyhost-test-missing:none", "pull": "never"}`), nil,
			shared.ErrInvalidConfig, "image ptyhost-test-missing:none not present and pull is never"},
		{"missing worktree", imageConfig(nil), func(r *shared.SpawnRequest) { r.Dir = "/nonexistent/worktree" },
			shared.ErrInvalidArgument, "/nonexistent/worktree"},
		{"worktree is a file", imageConfig(nil), func(r *shared.SpawnRequest) { r.Dir = file },
			shared.ErrInvalidArgument, "not a directory"},
		{"relative worktree", imageConfig(nil), func(r *shared.SpawnRequest) { r.Dir = "tmp" },
			shared.ErrInvalidArgument, "not an absolute path"},
		{"missing mount source", imageConfig(map[string]any{"mounts": []map[string]any{{"source": "/nonexistent/src", "target": "/src"}}}), nil,
			shared.ErrInvalidArgument, "/nonexistent/src"},
		{"missing command", imageConfig(nil), func(r *shared.SpawnRequest) { r.Command = []string{"/no/such/command"} },
			shared.ErrInvalidArgument, "/no/such/command"},
		{"missing user", imageConfig(map[string]any{"user": "ptyhost-no-such-user"}), nil,
			shared.ErrInvalidArgument, "unable to find user ptyhost-no-such-user"},
		{"missing user, exec", json.RawMessage(fmt.Sprintf(`{"container": %q, "user": "ptyhost-no-such-user"}`, startTarget(t, cli))), nil,
			shared.ErrInvalidArgument, "unable to find user ptyhost-no-such-user"},
		{"unknown field", json.RawMessage(`{"image": "x", "imagee": "y"}`), nil,
			shared.ErrInvalidConfig, `unknown field "imagee"`},
		{"missing exec target", json.RawMessage(`{"container": "ptyhost-no-such-container"}`), nil,
			shared.ErrInvalidConfig, "container ptyhost-no-such-container not found"},
		{"stopped exec target", json.RawMessage(fmt.Sprintf(`{"container": %q}`, stopped)), nil,
			shared.ErrUnavailable, "is not running"},
		{"exec dir missing", json.RawMessage(fmt.Sprintf(`{"container": %q}`, startTarget(t, cli))), func(r *shared.SpawnRequest) { r.Dir = "/nonexistent/dir" },
			shared.ErrInvalidArgument, `"/nonexistent/dir" does not exist`},
		{"wrong type", imageConfig(nil), func(r *shared.SpawnRequest) { r.EnvironmentType = "HOST" },
			shared.ErrInvalidArgument, `"HOST"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprintf("spawn-error-%d-%d", i, time.Now().UnixNano())
			req := request(id, tt.config, "/bin/true")
			if tt.edit != nil {
				tt.edit(&req)
			}
			p, err := env.Spawn(ctx, req)
			if err == nil {
				p.Close()
				t.Fatal("Spawn succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Spawn: %q, want an error wrapping %v that mentions %q", err, tt.want, tt.message)
			}
			if left := sessionContainers(t, cli, id); len(left) > 0 {
				t.Errorf("a failed Spawn left %d container(s): %s", len(left), left[0].ID)
			}
		})
	}
}

// A daemon that does not answer: Health says why, Spawn fails fast with
// ErrUnavailable (HTTP 503 in the host).
func TestUnreachableDaemon(t *testing.T) {
	env := loadDocker(t)
	ctx := testContext(t, 30*time.Second)
	cfg := json.RawMessage(fmt.Sprintf(`{"image": %q, "host": "unix:///nonexistent/docker.sock"}`, testImage()))
	h, ok := env.(shared.HealthChecker)
	if !ok {
		t.Fatal("the plugin client does not implement shared.HealthChecker")
	}
	err := h.Health(ctx, EnvironmentType, cfg)
	if !errors.Is(err, shared.ErrUnavailable) || !strings.Contains(err.Error(), "/nonexistent/docker.sock") {
		t.Errorf("Health = %v, want ErrUnavailable naming the socket", err)
	}
	start := time.Now()
	p, err := env.Spawn(ctx, request("unreachable", cfg))
	if err == nil {
		p.Close()
		t.Fatal("Spawn succeeded")
	}
	if !errors.Is(err, shared.ErrUnavailable) {
		t.Errorf("Spawn = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > pingTimeout+time.Second {
		t.Errorf("Spawn took %v to fail", d)
	}
	if err := h.Health(ctx, EnvironmentType, imageConfig(nil)); err != nil {
		t.Errorf("Health of the test daemon: %v", err)
	}
}

// Containers are locked down unless the config says otherwise, labelled,
// limited as configured, and run the session in its worktree.
func TestContainerSettings(t *testing.T) {
	env := loadDocker(t)
	cli := dockerClient(t)
	ctx := testContext(t, 60*time.Second)
	// Readable by uid 1000 in the container.
	dir, extra := t.TempDir(), t.TempDir()
	for _, d := range []string{dir, extra} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "marker"), []byte("in-worktree"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(extra, "data"), []byte("from-mount"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := imageConfig(map[string]any{
		"memory": "64m", "cpus": 0.5, "user": "1000", "network": "none",
		"workdir_target": "/work", "env": map[string]string{"A": "config", "B": "config"},
		"mounts": []map[string]any{{"source": extra, "target": "/extra", "read_only": true}},
	})
	req := request("settings", cfg, "/bin/sh", "-c",
		`printf '[%s|%s|%s|%s|%s|%s|%s]\n' "$TERM" "$A" "$B" "$(id -u)" "$PWD" "$(cat marker)" "$(cat /extra/data)"; `+
			`grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; touch /extra/x 2>&1 || echo read-only; read x`)
	req.EnvironmentID = "settings-env"
	req.Dir = dir
	req.Env = map[string]string{"B": "session"}
	p, err := env.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "[xterm-256color|config|session|1000|/work|in-worktree|from-mount]")
	term.Expect(ctx, "CapEff:\t0000000000000000")
	term.Expect(ctx, "NoNewPrivs:\t1")
	term.Expect(ctx, "read-only")

	list := sessionContainers(t, cli, "settings")
	if len(list) != 1 {
		t.Fatalf("%d containers labelled with the session, want 1", len(list))
	}
	res, err := cli.ContainerInspect(ctx, list[0].ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := res.Container
	hc := c.HostConfig
	if hc.Privileged || len(hc.CapDrop) != 1 || hc.CapDrop[0] != "ALL" || len(hc.SecurityOpt) != 1 || hc.SecurityOpt[0] != "no-new-privileges" {
		t.Errorf("privileged %v, cap drop %v, security opts %v", hc.Privileged, hc.CapDrop, hc.SecurityOpt)
	}
	if hc.Memory != 64<<20 || hc.NanoCPUs != 5e8 || hc.NetworkMode != "none" || hc.AutoRemove {
		t.Errorf("memory %d, nano cpus %d, network %q, auto remove %v", hc.Memory, hc.NanoCPUs, hc.NetworkMode, hc.AutoRemove)
	}
	// The core keeps the scrollback: the daemon keeps no copy by default.
	if hc.LogConfig.Type != "none" {
		t.Errorf("log driver %q, want none", hc.LogConfig.Type)
	}
	if l := c.Config.Labels; l[labelEnvironment] != "settings-env" || l[labelOwner] == "" {
		t.Errorf("labels %v", l)
	}
	term.Write("\r")
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v", st)
	}
	term.Close()
	if left := sessionContainers(t, cli, "settings"); len(left) != 0 {
		t.Errorf("%d container(s) left after Close", len(left))
	}
}

// With remove false the container stays after the session, stopped.
func TestKeepContainer(t *testing.T) {
	env := loadDocker(t)
	cli := dockerClient(t)
	ctx := testContext(t, 60*time.Second)
	id := fmt.Sprintf("keep-%d", time.Now().UnixNano())
	p, err := env.Spawn(ctx, request(id, imageConfig(map[string]any{"remove": false}), "/bin/sh", "-c", "echo kept; exit 4"))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	if st := term.Wait(ctx); st.Code != 4 {
		t.Errorf("exit status %+v", st)
	}
	term.Close()
	list := sessionContainers(t, cli, id)
	for _, c := range list {
		t.Cleanup(func() {
			cli.ContainerRemove(context.WithoutCancel(ctx), c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		})
	}
	if len(list) != 1 || list[0].State != "exited" {
		t.Fatalf("containers after the session: %+v", list)
	}
}

// A process that ignores the hangup is killed after the grace.
func TestKillEscalates(t *testing.T) {
	env := loadDocker(t)
	ctx := testContext(t, 60*time.Second)
	p, err := env.Spawn(ctx, request("kill-escalates", imageConfig(nil), "/bin/sh", "-c", "trap '' HUP TERM; echo ready; sleep 100000"))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "ready")
	start := time.Now()
	if err := p.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Kill took %v; it should return at once", d)
	}
	st := term.Wait(ctx)
	if st.Code != 137 || st.Signal != "SIGKILL" {
		t.Errorf("exit status %+v, want SIGKILL", st)
	}
	if d := time.Since(start); d < killGrace || d > killGrace+10*time.Second {
		t.Errorf("the process was killed after %v, want about %v", d, killGrace)
	}
}

// In exec mode Kill ends every process the session started, even one in a
// session and process group of its own that ignores the hangup, which
// outlives the exec'd process; and it does not wait out the grace when the
// hangup ended them all.
func TestExecKillReachesEveryProcess(t *testing.T) {
	env := loadDocker(t)
	cli := dockerClient(t)
	target := startTarget(t, cli)
	cfg := json.RawMessage(fmt.Sprintf(`{"container": %q}`, target))
	ctx := testContext(t, 60*time.Second)
	// survivors lists the target's processes whose command line is cmd.
	survivors := func(cmd string) []string {
		res, err := cli.ContainerTop(ctx, target, client.ContainerTopOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, row := range res.Processes {
			if len(row) > 0 && row[len(row)-1] == cmd {
				found = append(found, strings.Join(row, " "))
			}
		}
		return found
	}

	p, err := env.Spawn(ctx, request("exec-kill-setsid", cfg, "/bin/sh", "-c",
		`setsid sh -c 'trap "" HUP; echo ready; exec sleep 424242' & wait`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "ready")
	eventually(t, 10*time.Second, "the child runs", func() bool {
		return len(survivors("sleep 424242")) == 1
	})
	if err := p.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if st := term.Wait(ctx); st.Code == 0 {
		t.Errorf("exit status %+v after Kill, want non-zero", st)
	}
	eventually(t, killGrace+10*time.Second, "the child in a group of its own ends", func() bool {
		return len(survivors("sleep 424242")) == 0
	})
	term.Close()

	p, err = env.Spawn(ctx, request("exec-kill-prompt", cfg, "/bin/sh", "-c", "echo ready; sleep 424243"))
	if err != nil {
		t.Fatal(err)
	}
	term = sharedtest.NewTerm(t, p)
	term.Expect(ctx, "ready")
	start := time.Now()
	if err := p.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	term.Wait(ctx)
	term.Close() // waits for Kill's work to end
	if d := time.Since(start); d >= killGrace {
		t.Errorf("Kill and Close of a session that obeys the hangup took %v, want less than the grace %v", d, killGrace)
	}
	if left := survivors("sleep 424243"); len(left) != 0 {
		t.Errorf("processes left after Kill: %q", left)
	}
}

// In exec mode Close ends the background jobs a session left in the
// shared container after its exec'd process has ended — two in sessions
// of their own (setsid), out of the terminal's hangup, one ignoring SIGHUP
// too — which Docker would leave running.
func TestExecCloseEndsBackgroundJobs(t *testing.T) {
	env := loadDocker(t)
	cli := dockerClient(t)
	target := startTarget(t, cli)
	ctx := testContext(t, 60*time.Second)
	survivors := func() []string {
		res, err := cli.ContainerTop(ctx, target, client.ContainerTopOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var found []string
		for _, row := range res.Processes {
			if len(row) > 0 && (strings.HasSuffix(row[len(row)-1], "sleep 424246") || strings.HasSuffix(row[len(row)-1], "sleep 424247")) {
				found = append(found, strings.Join(row, " "))
			}
		}
		return found
	}
	p, err := env.Spawn(ctx, request("exec-background", json.RawMessage(fmt.Sprintf(`{"container": %q}`, target)), "/bin/sh", "-c",
		// Each in a session of its own, out of reach of the terminal's
		// hangup at the exec's end, one ignoring SIGHUP too; started
		// before the exec ends. (The test image has no nohup.)
		`setsid sleep 424246 >/dev/null 2>&1 & setsid sh -c 'trap "" HUP; exec sleep 424247' >/dev/null 2>&1 & sleep 0.5; echo started`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "started")
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v", st)
	}
	eventually(t, 10*time.Second, "both jobs run after the exec ended", func() bool {
		return len(survivors()) == 2
	})
	term.Close()
	// Killed by the time Close returns; the container's init reaps them.
	eventually(t, 5*time.Second, "no background job left after Close", func() bool {
		return len(survivors()) == 0
	})
	if !targetRunning(t, cli, target) {
		t.Error("the exec target stopped")
	}
}

// In exec mode unset_env (and the server's never-passed variables) strip
// a variable whether the config, the session or the container itself
// sets it; the rest of the container's environment stays.
func TestExecUnsetEnvIntegration(t *testing.T) {
	env := loadDocker(t)
	cli := dockerClient(t)
	target := startTargetEnv(t, cli, []string{"CLAUDECODE=1", "FROM_TARGET=kept"})
	ctx := testContext(t, 60*time.Second)
	req := request("exec-unset", json.RawMessage(fmt.Sprintf(`{"container": %q, "env": {"CLAUDECODE": "1", "FROM_CONFIG": "yes"}}`, target)),
		"/bin/sh", "-c", `echo "[${CLAUDECODE-unset}|$FROM_TARGET|$FROM_CONFIG|${`+execTokenVar+`:+token}]"`)
	req.UnsetEnv = []string{"CLAUDECODE"}
	expectOutput(ctx, t, env, req, "[unset|kept|yes|token]")
}

// The container's anonymous volumes go with it.
func TestNoVolumeLeft(t *testing.T) {
	env := loadDocker(t)
	cli := dockerClient(t)
	ctx := testContext(t, 60*time.Second)
	image := fmt.Sprintf("ptyhost-test-volume:%d", time.Now().UnixNano())
	base, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: testImage()}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.ContainerRemove(ctx, base.ID, client.ContainerRemoveOptions{Force: true})
	if _, err := cli.ContainerCommit(ctx, base.ID, client.ContainerCommitOptions{Reference: image, Changes: []string{"VOLUME /data"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.ImageRemove(context.WithoutCancel(ctx), image, client.ImageRemoveOptions{})
	})
	volumes := func() int {
		res, err := cli.VolumeList(ctx, client.VolumeListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Items)
	}
	before := volumes()
	p, err := env.Spawn(ctx, request("volume", fmt.Appendf(nil, `{"image": %q, "pull": "never"}`, image), "/bin/sh", "-c", "echo data > /data/x && echo wrote; read x"))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "wrote")
	if n := volumes(); n != before+1 {
		t.Errorf("%d volumes while the session runs, want %d", n, before+1)
	}
	term.Write("\r")
	term.Wait(ctx)
	term.Close()
	if n := volumes(); n != before {
		t.Errorf("%d volumes after the session, want %d", n, before)
	}
}

// A named user and group the exec target has pass the plugin's check and
// run the session as them; the image's are root and user (1000).
func TestExecNamedUser(t *testing.T) {
	env := loadDocker(t)
	cli := dockerClient(t)
	ctx := testContext(t, 60*time.Second)
	req := request("exec-user", json.RawMessage(fmt.Sprintf(`{"container": %q, "user": "user:user"}`, startTarget(t, cli))),
		"/bin/sh", "-c", `echo "[$(id -u):$(id -g)]"`)
	expectOutput(ctx, t, env, req, "[1000:1000]")
}

// "network": "container:NAME" puts the session in that container's
// network namespace, with either terminal.
func TestNetworkOfAnotherContainer(t *testing.T) {
	env := loadDocker(t)
	cli := dockerClient(t)
	ctx := testContext(t, 60*time.Second)
	target := startTarget(t, cli)
	info, err := cli.ContainerInspect(ctx, target, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", info.Container.State.Pid))
	if err != nil {
		t.Fatalf("the target's network namespace: %v", err)
	}
	for _, terminal := range []string{TerminalDirect, "daemon"} {
		req := request("net-of-"+terminal, imageConfig(map[string]any{"network": "container:" + target, "terminal": terminal}),
			"/bin/sh", "-c", `echo "[$(readlink /proc/self/ns/net)]"`)
		expectOutput(ctx, t, env, req, "["+want+"]")
	}
}

// An /etc/passwd that is a link, which the daemon's archive does not
// follow, leaves the named user to the runtime, which does: the session
// runs as the user rather than being refused.
func TestExecNamedUserThroughLink(t *testing.T) {
	env := loadDocker(t)
	cli := dockerClient(t)
	ctx := testContext(t, 60*time.Second)
	target := startTarget(t, cli)
	relink := request("exec-relink", json.RawMessage(fmt.Sprintf(`{"container": %q}`, target)),
		"/bin/sh", "-c", "mv /etc/passwd /etc/passwd.real && ln -s passwd.real /etc/passwd && echo [linked]")
	expectOutput(ctx, t, env, relink, "[linked]")

	req := request("exec-user-link", json.RawMessage(fmt.Sprintf(`{"container": %q, "user": "user"}`, target)),
		"/bin/sh", "-c", `echo "[$(id -u)]"`)
	expectOutput(ctx, t, env, req, "[1000]")
}

// expectOutput spawns req in env, expects want in its output, and waits
// for the session to end.
func expectOutput(ctx context.Context, t *testing.T, env shared.Environment, req shared.SpawnRequest, want string) {
	t.Helper()
	p, err := env.Spawn(ctx, req)
	if err != nil {
		t.Fatalf("Spawn %s: %v", req.SessionID, err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, want)
	term.Wait(ctx)
	term.Close()
}
