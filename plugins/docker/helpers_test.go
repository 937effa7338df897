package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/core/pluginhost"
	"github.com/ptyhost/ptyhost/internal/leakcheck"
	"github.com/ptyhost/ptyhost/internal/testbin"
	"github.com/ptyhost/ptyhost/shared"
)

// The integration tests run against the daemon at DOCKER_HOST (else the
// default socket) and its image PTYHOST_TEST_DOCKER_IMAGE (default
// ptyhost-test:latest), both as scripts/services/docker.sh start sets them
// up. Without them the tests skip, unless PTYHOST_INTEGRATION=1 (make test),
// when they fail.

func TestMain(m *testing.M) { leakcheck.Main(m) }

// testImage is the image the integration tests run: /bin/sh with busybox.
func testImage() string {
	if img := os.Getenv("PTYHOST_TEST_DOCKER_IMAGE"); img != "" {
		return img
	}
	return "ptyhost-test:latest"
}

var daemonCheck = sync.OnceValue(func() error {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return err
	}
	if _, err := cli.ImageInspect(ctx, testImage()); err != nil {
		return fmt.Errorf("test image: %w", err)
	}
	return nil
})

// needDaemon skips the test, or fails it under PTYHOST_INTEGRATION=1, when
// there is no daemon with the test image.
func needDaemon(t testing.TB) {
	t.Helper()
	if err := daemonCheck(); err != nil {
		unavailable(t, err)
	}
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("PTYHOST_INTEGRATION") == "1" {
		t.Fatalf("no Docker daemon: run scripts/services/docker.sh start (make test does): %v", err)
	}
	t.Skipf("no Docker daemon (run scripts/services/docker.sh start and export its lines): %v", err)
}

// dockerClient returns a client of the test daemon, closed at cleanup.
func dockerClient(t testing.TB) *client.Client {
	t.Helper()
	needDaemon(t)
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// pluginBinary is the plugin built as make build builds it: static.
func pluginBinary(t testing.TB) string {
	t.Helper()
	return testbin.Path(t, "plugins/docker", "plugins/ptyhost-plugin-docker")
}

// loadDocker starts the real plugin binary through pluginhost.Load and
// returns its DOCKER environment; the test's cleanup stops it.
func loadDocker(t testing.TB) shared.Environment {
	t.Helper()
	needDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	plugins, err := pluginhost.Load(ctx, pluginhost.Options{Dir: testbin.PluginDir(t, "docker"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plugins.Close)
	// Plugins start in the background.
	if err := plugins.WaitType(ctx, EnvironmentType); err != nil {
		t.Fatal(err)
	}
	env, err := plugins.Environment(EnvironmentType)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// imageConfig is a config running the test image, with extra fields.
func imageConfig(extra map[string]any) json.RawMessage {
	cfg := map[string]any{"image": testImage(), "pull": "never"}
	for k, v := range extra {
		cfg[k] = v
	}
	b, _ := json.Marshal(cfg)
	return b
}

func request(id string, cfg json.RawMessage, argv ...string) shared.SpawnRequest {
	return shared.SpawnRequest{
		SessionID:       id,
		EnvironmentID:   "test-env",
		EnvironmentType: EnvironmentType,
		Config:          cfg,
		Command:         argv,
		Size:            shared.Size{Cols: 80, Rows: 24},
	}
}

// sessionContainers lists the containers, running or not, labelled with
// the session id.
func sessionContainers(t testing.TB, cli *client.Client, sessionID string) []container.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: client.Filters{}.Add("label", labelSession+"="+sessionID),
	})
	if err != nil {
		t.Fatal(err)
	}
	return res.Items
}

// labelled lists the containers, running or not, with the label (k or
// k=v).
func labelled(t testing.TB, cli *client.Client, label string) []container.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", label)})
	if err != nil {
		t.Fatal(err)
	}
	return res.Items
}

// eventually polls cond every 20 ms until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startTarget starts a long-running container of the test image for exec
// mode and returns its name; the test's cleanup removes it.
func startTarget(t testing.TB, cli *client.Client) string {
	t.Helper()
	return startTargetEnv(t, cli, nil)
}

// startTargetEnv is startTarget with the container's environment, which
// its execs inherit, set to env (NAME=value).
func startTargetEnv(t testing.TB, cli *client.Client, env []string) string {
	t.Helper()
	return startTargetWith(t, cli, "", env, &container.HostConfig{})
}

// startTargetWith is startTargetEnv with the container's host settings
// (host), its name made unique by suffix.
func startTargetWith(t testing.TB, cli *client.Client, suffix string, env []string, host *container.HostConfig) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	init := true
	host.Init = &init
	name := containerNameFor("exec-target-" + t.Name() + suffix)
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:  testImage(),
			Cmd:    []string{"sleep", "100000"},
			Env:    env,
			Labels: map[string]string{"io.ptyhost.test": "exec-target"},
		},
		HostConfig: host,
		Name:       name,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cli.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	})
	if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// targetRunning reports whether the named container runs.
func targetRunning(t testing.TB, cli *client.Client, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Container.State != nil && res.Container.State.Running
}

// ownerID is this test process's owner id, as a plugin's (reap.go).
func ownerID() string { return thisMachine().ownerID(os.Getpid()) }

func sizeOf(cols, rows uint16) shared.Size { return shared.Size{Cols: cols, Rows: rows} }
