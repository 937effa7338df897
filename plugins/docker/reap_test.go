package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// A plugin that starts removes the containers of plugin processes that are
// gone, a crashed one's included, and leaves those of live ones alone.
func TestReapOrphans(t *testing.T) {
	cli := dockerClient(t)
	ctx := testContext(t, 90*time.Second)
	host := strings.Split(ownerID(), "/")[0]

	// Containers as plugins would have left them.
	labelledContainer := func(session, owner string) string {
		t.Helper()
		init := true
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{
				Image:  testImage(),
				Cmd:    []string{"sleep", "100000"},
				Labels: map[string]string{labelSession: session, labelEnvironment: "reap", labelOwner: owner},
			},
			HostConfig: &container.HostConfig{Init: &init},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cli.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
		})
		if _, err := cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	dead := labelledContainer("reap-dead-owner", host+"/999999999/1")
	live := labelledContainer("reap-live-owner", ownerID())
	remote := labelledContainer("reap-remote-owner", "elsewhere.example/1/1")

	// A plugin with a session, killed.
	crashed := loadDocker(t)
	p, err := crashed.Spawn(ctx, request("reap-crashed", imageConfig(nil), "/bin/sh", "-c", "echo ready; sleep 100000"))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "ready")
	list := sessionContainers(t, cli, "reap-crashed")
	if len(list) != 1 {
		t.Fatalf("%d containers for the session, want 1", len(list))
	}
	owner := strings.Split(list[0].Labels[labelOwner], "/")
	pid, err := strconv.Atoi(owner[1])
	if err != nil {
		t.Fatalf("owner label %q: %v", list[0].Labels[labelOwner], err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing the plugin (pid %d): %v", pid, err)
	}
	if err := term.Ended(ctx); !errors.Is(err, shared.ErrPluginExited) {
		t.Errorf("session output ended with %v, want ErrPluginExited", err)
	}
	if len(sessionContainers(t, cli, "reap-crashed")) != 1 {
		t.Fatal("the crashed plugin's container is gone before any plugin started")
	}

	// The next plugin cleans up as it starts.
	loadDocker(t)
	for _, id := range []string{dead, list[0].ID} {
		eventually(t, startupReapTimeout, "orphaned container "+shortID(id)+" removed", func() bool {
			_, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
			return err != nil
		})
	}
	for _, id := range []string{live, remote} {
		if _, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err != nil {
			t.Errorf("container %s of a live or remote owner: %v", shortID(id), err)
		}
	}
}
