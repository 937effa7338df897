package main

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// hostDeathBound is how long the containers of a server killed with
// SIGKILL may outlive it when no server comes back: the old plugin keeps
// them for its orphan timeout (orphanTimeout here), then stops and removes
// them within about 2 s; a new plugin's sweep removes what it could not.
// Generous for a loaded machine.
const hostDeathBound = 30 * time.Second

// orphanTimeout is the servers' --orphan-timeout in these tests.
const orphanTimeout = "1s"

// hostDeathSession starts a server with a DOCKER session whose process
// ignores SIGHUP, and returns the server and the owner label (the plugin
// process) of the session's container.
func hostDeathSession(t *testing.T) (*e2etest.Server, string) {
	t.Helper()
	cli := dockerClient(t)
	srv := startServer(t, "--orphan-timeout", orphanTimeout)
	srv.CreateEnvironment(t, "k9", "DOCKER", map[string]any{"image": testImage(), "pull": "never"})
	code, out := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": "k9",
		"command": []string{"/bin/sh", "-c", "trap '' HUP; echo ready; sleep 100000"}})
	if code != http.StatusCreated {
		t.Fatalf("create session: %d %v", code, out)
	}
	id := out["id"].(string)
	srv.Attach(t, id).WaitOutput("ready")
	list := sessionContainers(t, cli, id)
	if len(list) != 1 {
		t.Fatalf("%d containers for the session, want 1", len(list))
	}
	owner := list[0].Labels[labelOwner]
	if owner == "" {
		t.Fatal("the container has no owner label")
	}
	return srv, owner
}

// ownerPid is the plugin process of an owner label.
func ownerPid(t *testing.T, owner string) int {
	t.Helper()
	parts := strings.Split(owner, "/")
	pid, err := strconv.Atoi(parts[1])
	if len(parts) != 4 || err != nil {
		t.Fatalf("owner label %q is not host/pid/start/boot", owner)
	}
	return pid
}

// After a SIGKILL of the server and no server back within the orphan
// timeout, its DOCKER plugin stops and removes its containers before it
// exits, even one whose process ignores SIGHUP.
func TestHostDeathPluginRemovesContainers(t *testing.T) {
	cli := dockerClient(t)
	srv, owner := hostDeathSession(t)
	pid := ownerPid(t, owner)
	srv.Kill(t)
	eventually(t, hostDeathBound, "the old plugin exits", func() bool {
		return syscall.Kill(pid, 0) != nil
	})
	// The plugin's last request, the container's removal, may still be
	// under way in the daemon when the plugin's exit bound ends (a loaded
	// dockerd has taken over 1.5 s to remove a container): the daemon
	// finishes a removal whose client went away. What must not happen is a
	// container left for good, with no server back to sweep it.
	eventually(t, hostDeathBound, "no container of the exited plugin left", func() bool {
		return len(labelled(t, cli, labelOwner+"="+owner)) == 0
	})
}

// After a SIGKILL of the server and a new plugin started at once (not
// through a server, so it does not take the old plugin's sessions up),
// while the old one still runs: the new plugin leaves the live old one's
// containers alone, and once the old one's orphan timeout ends no
// container of it remains, running or exited.
func TestHostDeathNewPluginAtOnce(t *testing.T) {
	cli := dockerClient(t)
	srv, owner := hostDeathSession(t)
	srv.Kill(t)
	loadDocker(t)
	start := time.Now()
	eventually(t, hostDeathBound, "no container of the old plugin left", func() bool {
		return len(labelled(t, cli, labelOwner+"="+owner)) == 0
	})
	t.Logf("the old plugin's containers were gone %v after the new plugin started", time.Since(start).Round(time.Millisecond))
	if _, err := os.Stat("/proc/" + strconv.Itoa(ownerPid(t, owner))); err == nil {
		t.Logf("the old plugin still runs")
	}
}
