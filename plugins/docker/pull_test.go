package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// startRegistry runs Debian's docker-registry on a free loopback port (the
// daemon trusts 127.0.0.0/8 without TLS) and returns its address; the
// test's cleanup stops it. Nothing else can be pulled here.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		msg := "no docker-registry to pull from (apt-get install docker-registry; docker.sh start tries)"
		if os.Getenv("PTYHOST_INTEGRATION") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfg)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	eventually(t, 10*time.Second, "registry answers", func() bool {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

// An image that is not present is pulled with the session's terminal
// showing the progress, before the shell's first output; a pull that fails
// ends the session with the reason.
func TestPull(t *testing.T) {
	cli := dockerClient(t)
	registry := startRegistry(t)
	env := loadDocker(t)
	ctx := testContext(t, 120*time.Second)

	// An image with a layer of its own (4 MB of noise), so that the pull
	// downloads something.
	image := fmt.Sprintf("%s/ptyhost-pull:%d", registry, time.Now().UnixNano())
	init := true
	build, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: testImage(), Cmd: []string{"/bin/sh", "-c", "head -c 4000000 /dev/urandom > /blob"}},
		HostConfig: &container.HostConfig{Init: &init},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.ContainerRemove(ctx, build.ID, client.ContainerRemoveOptions{Force: true})
	wait := cli.ContainerWait(ctx, build.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := cli.ContainerStart(ctx, build.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-wait.Result:
		if r.StatusCode != 0 {
			t.Fatalf("building the layer: exit %d", r.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatal(err)
	}
	if _, err := cli.ContainerCommit(ctx, build.ID, client.ContainerCommitOptions{Reference: image}); err != nil {
		t.Fatal(err)
	}
	push, err := cli.ImagePush(ctx, image, client.ImagePushOptions{RegistryAuth: "e30="}) // {}: no credentials
	if err != nil {
		t.Fatal(err)
	}
	if err := push.Wait(ctx); err != nil {
		t.Fatalf("push: %v", err)
	}
	removeImage := func() {
		cli.ImageRemove(context.WithoutCancel(ctx), image, client.ImageRemoveOptions{PruneChildren: true})
	}
	removeImage()
	t.Cleanup(removeImage)

	t.Run("missing image is pulled", func(t *testing.T) {
		p, err := env.Spawn(ctx, request("pull", fmt.Appendf(nil, `{"image": %q}`, image), "/bin/sh", "-c", "echo shell-started; stty size; read x"))
		if err != nil {
			t.Fatal(err)
		}
		term := sharedtest.NewTerm(t, p)
		// Typed and resized while the pull runs: applied once it runs.
		term.Write("typed-early\r")
		if err := p.Resize(ctx, sizeOf(100, 30)); err != nil {
			t.Fatal(err)
		}
		term.Expect(ctx, "shell-started")
		term.Expect(ctx, "30 100")
		out := term.ReadAll(ctx)
		for _, want := range []string{"Pulling " + image + "\r\n", " Downloading ", " Pull complete\r\n", "Status: Downloaded newer image for " + image} {
			i := bytes.Index(out, []byte(want))
			if i < 0 || i > bytes.Index(out, []byte("shell-started")) {
				t.Errorf("no %q before the shell's output in %q", want, out)
			}
		}
		if st, err := p.Wait(ctx); err != nil || st.Code != 0 {
			t.Errorf("Wait = %+v, %v", st, err)
		}
	})

	t.Run("pull never", func(t *testing.T) {
		removeImage()
		_, err := env.Spawn(ctx, request("pull-never", fmt.Appendf(nil, `{"image": %q, "pull": "never"}`, image), "/bin/true"))
		if err == nil || !strings.Contains(err.Error(), "not present and pull is never") {
			t.Errorf("Spawn = %v", err)
		}
	})

	t.Run("failed pull", func(t *testing.T) {
		missing := registry + "/ptyhost-no-such-image:1"
		p, err := env.Spawn(ctx, request("pull-fails", fmt.Appendf(nil, `{"image": %q}`, missing), "/bin/true"))
		if err != nil {
			t.Fatal(err)
		}
		term := sharedtest.NewTerm(t, p)
		term.Expect(ctx, "ptyhost: pulling image "+missing+": Error response from daemon: manifest for "+missing+" not found")
		term.ReadAll(ctx)
		st, err := p.Wait(ctx)
		if err != nil || st.Code != -1 || !strings.Contains(st.Reason, "pulling image "+missing) {
			t.Errorf("Wait = %+v, %v; want code -1 and the pull's failure as reason", st, err)
		}
		if left := sessionContainers(t, cli, "pull-fails"); len(left) != 0 {
			t.Errorf("%d container(s) left", len(left))
		}
	})
}
