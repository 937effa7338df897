package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
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
	m := thisMachine()
	if m.boot == "" {
		t.Skip("no boot id on this system: no container is provably this machine's")
	}

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
	dead := labelledContainer("reap-dead-owner", m.host+"/999999999/1/"+m.boot)
	live := labelledContainer("reap-live-owner", ownerID())
	remote := labelledContainer("reap-remote-owner", "elsewhere.example/1/1/"+m.boot)
	// A machine of the same name (or this one before a reboot), and an
	// older plugin's label without a boot id: not provably this
	// machine's, so left alone though their pids do not run here.
	namesake := labelledContainer("reap-namesake-owner", m.host+"/999999999/1/00000000-0000-4000-8000-000000000000")
	legacy := labelledContainer("reap-legacy-owner", m.host+"/999999999/1")

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
	for _, id := range []string{live, remote, namesake, legacy} {
		if _, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err != nil {
			t.Errorf("container %s of a live, remote or unprovable owner: %v", shortID(id), err)
		}
	}
}

// A container whose owner still runs when a plugin starts is left alone,
// and removed, running or exited, once that owner ends: the old plugin of
// a server killed and restarted at once may still be stopping its
// sessions when the new plugin sweeps.
func TestReapOwnerThatEndsLater(t *testing.T) {
	cli := dockerClient(t)
	ctx := testContext(t, 90*time.Second)

	// The owner: a process of this machine, standing in for a plugin.
	owner := exec.Command("sleep", "100000")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	ownerExited := make(chan struct{})
	go func() {
		owner.Wait()
		close(ownerExited)
	}()
	t.Cleanup(func() {
		owner.Process.Kill()
		<-ownerExited
	})
	label := thisMachine().ownerID(owner.Process.Pid)

	var ids []string
	for _, tt := range []struct {
		session string
		cmd     []string
	}{
		{"reap-later-running", []string{"sleep", "100000"}},
		{"reap-later-exited", []string{"true"}},
	} {
		init := true
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{
				Image:  testImage(),
				Cmd:    tt.cmd,
				Labels: map[string]string{labelSession: tt.session, labelEnvironment: "reap-later", labelOwner: label},
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
		ids = append(ids, res.ID)
	}
	eventually(t, 30*time.Second, "the short container exits", func() bool {
		res, err := cli.ContainerInspect(ctx, ids[1], client.ContainerInspectOptions{})
		return err == nil && res.Container.State != nil && res.Container.State.Status == "exited"
	})

	// The plugin sweeps as it starts; a health check waits for that.
	env := loadDocker(t)
	if err := env.(shared.HealthChecker).Health(ctx, EnvironmentType, imageConfig(nil)); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{}); err != nil {
			t.Fatalf("container %s of a live owner was removed: %v", shortID(id), err)
		}
	}

	// The owner ends: its containers go.
	owner.Process.Kill()
	<-ownerExited
	for _, id := range ids {
		eventually(t, 20*time.Second, "container "+shortID(id)+" of the ended owner removed", func() bool {
			_, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
			return err != nil
		})
	}
}

// The sweep removes only what it can prove is this machine's and dead: an
// owner with this machine's hostname and boot id whose process is gone.
// Another machine of the same name sharing the daemon (another boot id)
// keeps its containers even though its pids mean nothing here; so do an
// older plugin's label without a boot id, a container without an owner,
// another machine's, and a live owner's. A kept container is only killed.
func TestReapProvesOwner(t *testing.T) {
	m := thisMachine()
	if m.boot == "" {
		t.Skip("no boot id on this system")
	}
	fd := startFakeDaemon(t)
	dead := deadPid(t)
	labelled := func(id, owner string, extra ...string) {
		labels := map[string]string{labelSession: "s-" + id, labelEnvironment: "reap"}
		if owner != "" {
			labels[labelOwner] = owner
		}
		for i := 0; i+1 < len(extra); i += 2 {
			labels[extra[i]] = extra[i+1]
		}
		fd.addContainer(&fakeContainer{ID: id, Name: "ptyhost-" + id, Running: true, Labels: labels})
	}
	deadOwner := fmt.Sprintf("%s/%d/1/%s", m.host, dead, m.boot)
	labelled("mine-dead", deadOwner)
	labelled("mine-dead-kept", deadOwner, labelKeep, "true")
	labelled("namesake", fmt.Sprintf("%s/%d/1/00000000-0000-4000-8000-000000000000", m.host, dead))
	labelled("legacy", fmt.Sprintf("%s/%d/1", m.host, dead))
	labelled("no-owner", "")
	labelled("remote", fmt.Sprintf("elsewhere.example/%d/1/%s", dead, m.boot))
	labelled("live", m.ownerID(os.Getppid()))
	fd.addContainer(&fakeContainer{ID: "unlabelled", Running: true})

	e := New(nil)
	t.Cleanup(e.Close)
	e.ReapOrphans(testContext(t, 30*time.Second), fd.host)
	if got, want := fd.removedIDs(), []string{"mine-dead"}; !slices.Equal(got, want) {
		t.Errorf("removed %q, want %q", got, want)
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	for _, c := range fd.containers {
		if c.Running != (c.ID != "mine-dead-kept") {
			t.Errorf("container %s: running %v", c.ID, c.Running)
		}
	}
}

// deadPid returns the pid of a process of this machine that has ended.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}
