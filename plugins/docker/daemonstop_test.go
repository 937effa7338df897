package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// privateDaemon is a dockerd of the test's own, on a private socket and
// data-root, so that stopping it harms no other test.
type privateDaemon struct {
	host   string // unix://…
	cmd    *exec.Cmd
	exited chan struct{}
	log    *e2etest.Buffer
}

// startPrivateDaemon starts a dockerd with the flags docker.sh uses and
// loads the test image into it from the test daemon; the test's cleanup
// stops it and removes its directories.
func startPrivateDaemon(t *testing.T, from *client.Client) *privateDaemon {
	t.Helper()
	bin, err := exec.LookPath("dockerd")
	if err != nil || os.Geteuid() != 0 {
		unavailable(t, fmt.Errorf("a private dockerd needs root and dockerd (found %q): %v", bin, err))
	}
	// Short: the socket path, and containerd's under the exec-root, must
	// stay under 108 bytes.
	dir, err := os.MkdirTemp("/tmp", "ptyd-")
	if err != nil {
		t.Fatal(err)
	}
	d := &privateDaemon{host: "unix://" + filepath.Join(dir, "docker.sock"), exited: make(chan struct{}), log: &e2etest.Buffer{}}
	d.cmd = exec.Command(bin,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"--host", d.host,
		"--iptables=false", "--ip6tables=false", "--bridge=none")
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.stop(t)
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing the private daemon's %s: %v", dir, err)
		}
	})

	cli, err := client.New(client.WithHost(d.host))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	eventually(t, 60*time.Second, "the private dockerd answers", func() bool {
		select {
		case <-d.exited:
			t.Fatalf("dockerd exited:\n%s", d.log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cli.Ping(ctx, client.PingOptions{})
		return err == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	saved, err := from.ImageSave(ctx, []string{testImage()})
	if err != nil {
		t.Fatal(err)
	}
	defer saved.Close()
	loaded, err := cli.ImageLoad(ctx, saved)
	if err != nil {
		t.Fatal(err)
	}
	defer loaded.Close()
	var out bytes.Buffer
	out.ReadFrom(loaded)
	if _, err := cli.ImageInspect(ctx, testImage()); err != nil {
		t.Fatalf("loading the test image into the private daemon: %v\n%s", err, out.String())
	}
	return d
}

// stop stops the daemon as an init system would (SIGTERM: it stops
// listening, then stops its containers), killing it after 30 s.
func (d *privateDaemon) stop(t *testing.T) {
	select {
	case <-d.exited:
		return
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("the private dockerd did not stop on SIGTERM; killing it\n%s", d.log)
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
	}
}

// A daemon that stops under a live session: the session ends with status
// ERROR and a reason naming the daemon, and its clients are told.
func TestDaemonStopped(t *testing.T) {
	cli := dockerClient(t)
	priv := startPrivateDaemon(t, cli)
	srv := startServer(t)
	srv.CreateEnvironment(t, "private", "DOCKER", map[string]any{"image": testImage(), "pull": "never", "host": priv.host})
	id := srv.CreateSession(t, map[string]any{"environment_id": "private", "command": []string{"/bin/sh", "-c", "echo ready; sleep 100000"}})
	tm := srv.Attach(t, id)
	tm.WaitOutput("ready")

	priv.stop(t)
	m := tm.WaitControl("exit")
	if m.Code != -1 || !strings.Contains(m.Reason, "docker daemon connection lost") {
		t.Errorf("exit message %v, want code -1 and the daemon as reason", m)
	}
	rec := srv.Session(t, id)
	if rec["status"] != "ERROR" || !strings.Contains(fmt.Sprint(rec["status_reason"]), "docker daemon") {
		t.Errorf("session after the daemon stopped: %v", rec)
	}

	// New sessions fail fast and say why.
	start := time.Now()
	code, out := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": "private"})
	if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(out["error"]), priv.host) {
		t.Errorf("create with the daemon down = %d %v, want 503 naming it", code, out)
	}
	if d := time.Since(start); d > pingTimeout+time.Second {
		t.Errorf("create took %v to fail", d)
	}
}
