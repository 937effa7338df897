package main

// Sessions outlive the server: the end-to-end tests of issue 10, each
// through the real server binary and the real plugin binaries. A server is
// killed with SIGKILL or stopped with SIGTERM (or 'ptyhost stop'), a new
// one starts on the same data directory and database, and clients resume
// at the offset they had received, byte-exact.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dockerclient "github.com/moby/moby/client"

	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// counterScript prints 1, 2, 3… one a line, some tens a second, forever.
const counterScript = `i=0; while :; do i=$((i+1)); echo $i; sleep 0.01; done`

// restartOrphanTimeout is the orphan timeout of the servers these tests
// restart: far longer than a restart takes on a loaded machine.
const restartOrphanTimeout = "1m"

// startKeeping starts the ptyhost binary as a server whose stop leaves its
// sessions running (ptyhost's default), with the plugins o names.
func startKeeping(t *testing.T, o e2etest.Options) *e2etest.Server {
	t.Helper()
	o.KeepSessions, o.DropPTYHOSTEnv = true, true
	// What the servers did around a restart is in the log a failure shows.
	o.LogLevel = "info"
	o.Args = append([]string{"--orphan-timeout", restartOrphanTimeout}, o.Args...)
	return e2etest.Start(t, o)
}

// needService skips the test, or fails it under PTYHOST_INTEGRATION=1
// (make test), when a service it needs is not set up.
func needService(t *testing.T, what string) {
	t.Helper()
	msg := what + " not set up: run scripts/services/*.sh start (make test does) and export their lines"
	if os.Getenv("PTYHOST_INTEGRATION") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// dockerImage returns the image of DOCKER sessions, checking a daemon is
// set up.
func dockerImage(t *testing.T) string {
	t.Helper()
	img := os.Getenv("PTYHOST_TEST_DOCKER_IMAGE")
	if img == "" || os.Getenv("DOCKER_HOST") == "" {
		needService(t, "Docker (DOCKER_HOST, PTYHOST_TEST_DOCKER_IMAGE)")
	}
	return img
}

// sshConfig returns the configuration of an SSH environment reaching the
// test sshd with its unencrypted key.
func sshConfig(t *testing.T) map[string]any {
	t.Helper()
	host, port, user := os.Getenv("PTYHOST_TEST_SSH_HOST"), os.Getenv("PTYHOST_TEST_SSH_PORT"), os.Getenv("PTYHOST_TEST_SSH_USER")
	key, hostKey := os.Getenv("PTYHOST_TEST_SSH_KEY"), os.Getenv("PTYHOST_TEST_SSH_HOST_KEY_PUB")
	if host == "" || port == "" || user == "" || key == "" || hostKey == "" {
		needService(t, "sshd (PTYHOST_TEST_SSH_*)")
	}
	pub, err := os.ReadFile(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(knownHosts, fmt.Appendf(nil, "[%s]:%s %s", host, port, pub), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("PTYHOST_TEST_SSH_PORT %q: %v", port, err)
	}
	return map[string]any{"host": host, "port": p, "user": user, "identity_file": key, "known_hosts": knownHosts}
}

// counterClient follows one session's counter across attachments, as a
// client that resumes at the offset it has received.
type counterClient struct {
	t   *testing.T
	id  string
	out []byte // everything received, over every attachment
	off int64  // the offset after out
	tm  *e2etest.Term
}

// attach attaches to the session at c.off (from the start the first
// time) and checks the server resumes there: a reset, which would mean a
// gap, fails the reads that follow.
func (c *counterClient) attach(srv *e2etest.Server) {
	c.t.Helper()
	if c.tm == nil && c.off == 0 {
		c.tm = srv.Attach(c.t, c.id)
	} else {
		c.tm = srv.AttachAt(c.t, c.id, c.off)
	}
	if got := c.tm.Hello().Offset; got != c.off {
		c.t.Fatalf("%s: hello offset %d, want the resume offset %d", c.id, got, c.off)
	}
}

// readTo reads until the counter has printed n, then keeps what was
// received: the next attachment resumes after it.
func (c *counterClient) readTo(n int) {
	c.t.Helper()
	line := []byte("\n" + strconv.Itoa(n) + "\r\n")
	err := c.tm.Until(func() bool {
		return bytes.Contains(append(append([]byte{'\n'}, c.out...), c.tm.Out...), line)
	})
	c.out = append(c.out, c.tm.Out...)
	c.tm.Out = nil
	c.off = c.tm.Conn.Offset()
	if err != nil {
		c.t.Fatalf("%s: waiting for the counter's %d: %v", c.id, n, err)
	}
	if want := int64(len(c.out)); c.off != want {
		c.t.Fatalf("%s: offset %d after %d bytes received from 0", c.id, c.off, want)
	}
}

// last returns the last value the counter printed, as received.
func (c *counterClient) last() int {
	return lastCounter(c.out)
}

// lastCounter returns the counter's last complete line in out, or 0.
func lastCounter(out []byte) int {
	lines := strings.Split(string(out), "\r\n")
	for i := len(lines) - 2; i >= 0; i-- {
		if n, err := strconv.Atoi(lines[i]); err == nil {
			return n
		}
	}
	return 0
}

// check fails the test unless the output received is the counter's: 1,
// 2, 3… each once, in order (anything before the 1, such as a remote
// shell's greeting, is skipped; a last line may be incomplete).
func (c *counterClient) check() {
	c.t.Helper()
	lines := strings.Split(string(c.out), "\r\n")
	lines = lines[:len(lines)-1]
	start := -1
	for i, l := range lines {
		if l == "1" {
			start = i
			break
		}
	}
	if start < 0 {
		c.t.Fatalf("%s: no counter in %q", c.id, e2etest.Tail(c.out, 300))
	}
	for i, l := range lines[start:] {
		if l != strconv.Itoa(i+1) {
			from := max(0, start+i-3)
			c.t.Fatalf("%s: line %d of the counter is %q, want %d: the output lost or repeated bytes; around it: %q",
				c.id, i+1, l, i+1, lines[from:min(len(lines), start+i+3)])
		}
	}
}

// waitLive checks session id is live again on srv, ACTIVE or IDLE.
func waitLive(t *testing.T, srv *e2etest.Server, id string) {
	t.Helper()
	rec := srv.Session(t, id)
	if st := rec["status"]; st != "ACTIVE" && st != "IDLE" {
		t.Fatalf("%s after the restart: %v, want ACTIVE or IDLE", id, rec)
	}
}

// fileCounter reads the counter value a HOST session writes to path.
func fileCounter(path string) int {
	b, _ := os.ReadFile(path)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// TestE2EKilledServerSessionsLive: kill -9 of the server while a HOST, a
// DOCKER and an SSH session each print a counter; a new server on the same
// data directory and database takes them up; a client resuming at its
// last offset receives every value printed while no server ran, in order,
// without duplicates, and then the live output.
func TestE2EKilledServerSessionsLive(t *testing.T) {
	t.Parallel()
	image, ssh := dockerImage(t), sshConfig(t)
	srv := startKeeping(t, e2etest.Options{Plugins: []string{"host", "docker", "ssh"}, WaitPlugins: true})
	srv.CreateEnvironment(t, "dock", "DOCKER", map[string]any{"image": image, "pull": "never"})
	srv.CreateEnvironment(t, "remote", "SSH", ssh)

	// The HOST counter also writes its value to a file: the test's clock
	// for "values were printed while no server ran". It renames the file
	// into place: a reader must never see it truncated and empty, which
	// reads as 0.
	mark := filepath.Join(t.TempDir(), "counter")
	hostScript := `i=0; while :; do i=$((i+1)); echo $i; echo $i > ` + mark + `.new; mv ` + mark + `.new ` + mark + `; sleep 0.01; done`
	var clients []*counterClient
	for _, env := range []struct{ id, script string }{{"host", hostScript}, {"dock", counterScript}, {"remote", counterScript}} {
		id := srv.CreateSession(t, map[string]any{"environment_id": env.id, "command": []string{"/bin/sh", "-c", env.script}})
		c := &counterClient{t: t, id: id}
		c.attach(srv)
		c.readTo(20)
		clients = append(clients, c)
	}

	srv.Kill(t)
	killed := fileCounter(mark)
	e2etest.Eventually(t, 30*time.Second, "the HOST counter to go on without a server", func() bool {
		return fileCounter(mark) >= killed+50
	}, func() string {
		return fmt.Sprintf("the counter is at %d, was %d at the kill", fileCounter(mark), killed)
	})

	srv = srv.Restart(t)
	printed := fileCounter(mark) // by the HOST program, with no server there
	for i, c := range clients {
		waitLive(t, srv, c.id)
		before := c.last()
		c.attach(srv)
		// Everything printed while no server ran, then the live output.
		if i == 0 {
			c.readTo(printed)
		} else {
			c.readTo(before + 1)
		}
		c.readTo(c.last() + 20)
		c.check()
	}
}

// TestE2ETerminatedServerSessionsLive: SIGTERM (by default) leaves the
// sessions running: the attached client is told 1012 (reconnect), and the
// next server takes the session up where the client left off.
func TestE2ETerminatedServerSessionsLive(t *testing.T) {
	t.Parallel()
	srv := startKeeping(t, e2etest.Options{})
	c := &counterClient{t: t, id: srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", counterScript}})}
	c.attach(srv)
	c.readTo(20)

	srv.Signal(t, syscall.SIGTERM) // SIGTERM
	err := c.tm.WaitEnd()
	if code, reason, _ := wsproto.CloseStatus(err); code != wsproto.CloseRestart || reason != wsproto.CloseReasonRestart {
		t.Errorf("the client's connection ended with %v, want close code %d %q", err, wsproto.CloseRestart, wsproto.CloseReasonRestart)
	}
	c.tm.Out = nil // what came after the offset taken: received again on resume
	if err := srv.Wait(t, 20*time.Second); err != nil {
		t.Errorf("the server's exit: %v", err)
	}

	srv = srv.Restart(t)
	waitLive(t, srv, c.id)
	c.attach(srv)
	c.readTo(c.last() + 1)
	c.readTo(c.last() + 20) // live
	c.check()
}

// TestE2EHangUpOnStop: with --hang-up-on-stop, or 'ptyhost stop
// --hang-up', a stop ends the sessions as servers always did: their
// records are no longer live and the plugin processes are gone.
func TestE2EHangUpOnStop(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		args []string
		stop func(t *testing.T, srv *e2etest.Server)
	}{
		{"flag and SIGTERM", []string{"--hang-up-on-stop"}, func(t *testing.T, srv *e2etest.Server) {
			srv.Signal(t, syscall.SIGTERM)
		}},
		{"ptyhost stop --hang-up", nil, func(t *testing.T, srv *e2etest.Server) {
			code, stdout, stderr := runCmd(t, "stop", "--hang-up", "--server", srv.URL)
			if code != 0 || !strings.Contains(stdout, "hangs every session up") {
				t.Errorf("ptyhost stop --hang-up: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startKeeping(t, e2etest.Options{Args: tt.args})
			id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", counterScript}})
			tm := srv.Attach(t, id)
			tm.WaitOutput("\n5\r\n")
			plugins := children(srv.Pid(t))
			if len(plugins) == 0 {
				t.Fatal("the server has no plugin process")
			}

			tt.stop(t, srv)
			if err := tm.WaitEnd(); !closedNormally(err) && !isGoingAway(err) {
				t.Errorf("the client's connection ended with %v, want the session's end", err)
			}
			if err := srv.Wait(t, 20*time.Second); err != nil {
				t.Errorf("the server's exit: %v", err)
			}
			e2etest.Eventually(t, 10*time.Second, "the plugin processes to exit", func() bool {
				for _, pid := range plugins {
					if alive(pid) {
						return false
					}
				}
				return true
			}, nil)
			rec := srv.Restart(t).Session(t, id)
			if st := rec["status"]; st == "ACTIVE" || st == "IDLE" || st == "STARTING" {
				t.Errorf("after the hang-up stop and a restart: %v, want the session ended", rec)
			}
		})
	}
}

// isGoingAway reports whether err ended a connection with close code 1001.
func isGoingAway(err error) bool {
	code, _, ok := wsproto.CloseStatus(err)
	return ok && code == wsproto.CloseGoingAway
}

// TestE2ETenRestarts: ten restarts of the server in a row, alternately
// kill -9 and a graceful stop (SIGTERM, or 'ptyhost stop'), under a
// session writing continuously; a client resuming at its offset after each
// receives exactly the program's output.
func TestE2ETenRestarts(t *testing.T) {
	t.Parallel()
	srv := startKeeping(t, e2etest.Options{})
	c := &counterClient{t: t, id: srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", counterScript}})}
	c.attach(srv)
	c.readTo(10)
	for round := range 10 {
		switch round % 4 {
		case 0, 2:
			srv.Kill(t)
		case 1:
			srv.Signal(t, syscall.SIGTERM)
			if err := srv.Wait(t, 20*time.Second); err != nil {
				t.Fatalf("round %d: the server's exit: %v", round, err)
			}
		case 3:
			code, stdout, stderr := runCmd(t, "stop", "--server", srv.URL)
			if code != 0 || !strings.Contains(stdout, "keep running for the next server") {
				t.Fatalf("round %d: ptyhost stop: exit %d\nstdout %q\nstderr %q", round, code, stdout, stderr)
			}
			if err := srv.Wait(t, 20*time.Second); err != nil {
				t.Fatalf("round %d: the server's exit: %v", round, err)
			}
		}
		srv = srv.Restart(t)
		waitLive(t, srv, c.id)
		c.attach(srv)
		c.readTo(c.last() + 10)
	}
	c.check()
	t.Logf("%d counter values, %d bytes, over ten restarts", c.last(), len(c.out))
}

// TestE2EOrphanTimeout: when no server returns within the orphan timeout,
// the plugins hang their sessions up and exit: the HOST session's shell is
// gone, and the DOCKER session's container removed.
func TestE2EOrphanTimeout(t *testing.T) {
	t.Parallel()
	image := dockerImage(t)
	srv := startKeeping(t, e2etest.Options{Plugins: []string{"host", "docker"}, WaitPlugins: true, Args: []string{"--orphan-timeout", "2s"}})
	srv.CreateEnvironment(t, "dock", "DOCKER", map[string]any{"image": image, "pull": "never"})
	pidFile := filepath.Join(t.TempDir(), "pid")
	srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "echo $$ > " + pidFile + "; echo ready; while :; do sleep 1; done"}})
	dock := srv.CreateSession(t, map[string]any{"environment_id": "dock", "command": []string{"/bin/sh", "-c", "echo ready; while :; do sleep 1; done"}})
	srv.Attach(t, dock).WaitOutput("ready")
	var shell int
	e2etest.Eventually(t, 10*time.Second, "the HOST session's pid file", func() bool {
		shell = fileCounter(pidFile)
		return shell > 0
	}, nil)
	plugins := children(srv.Pid(t))
	if len(plugins) != 2 {
		t.Fatalf("server children %v, want the host and docker plugins", plugins)
	}
	docker := dockerClient(t)
	if n := len(sessionContainers(t, docker, dock)); n != 1 {
		t.Fatalf("%d containers for the DOCKER session, want 1", n)
	}

	srv.Kill(t)
	var left string
	e2etest.Eventually(t, 30*time.Second, "the plugins, the shell and the container to be gone", func() bool {
		var alives []string
		for _, pid := range append(plugins, shell) {
			if alive(pid) {
				alives = append(alives, strconv.Itoa(pid))
			}
		}
		left = fmt.Sprintf("alive: %v; containers: %d", alives, len(sessionContainers(t, docker, dock)))
		return len(alives) == 0 && len(sessionContainers(t, docker, dock)) == 0
	}, func() string { return left })
}

// dockerClient returns a client of the test daemon, closed at cleanup.
func dockerClient(t *testing.T) *dockerclient.Client {
	t.Helper()
	cli, err := dockerclient.New(dockerclient.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// sessionContainers lists the containers, running or not, of a DOCKER
// session (the plugin labels them with the session's id).
func sessionContainers(t *testing.T, cli *dockerclient.Client, id string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.ContainerList(ctx, dockerclient.ContainerListOptions{All: true, Filters: dockerclient.Filters{}.Add("label", "io.ptyhost.session="+id)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

// TestE2EAttachCommandSurvivesRestart: `ptyhost attach` on a PTY goes on
// through a kill -9 of the server and a new server on the same port, and
// through a SIGTERM and another: it reconnects by itself, its screen is
// the program's output without a gap or a duplicate, and it exits with the
// session's status.
func TestE2EAttachCommandSurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := startKeeping(t, e2etest.Options{})
	p, proxyURL := proxyTo(t, srv.URL)
	// The program counts, then waits for a line to exit: however long
	// the restarts take, it ends after them.
	const n = 150
	script := `i=0; while [ $i -lt ` + strconv.Itoa(n) + ` ]; do i=$((i+1)); echo "n$i"; sleep 0.02; done; read x; exit 7`
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", script}})
	cmd, ptmx, out := startCLI(t, "attach", "--server", proxyURL, id)
	out.wait(t, regexp.MustCompile(`n20\r\n`))

	srv.Kill(t)
	out.wait(t, regexp.MustCompile(`reconnecting…`))
	srv = srv.Restart(t)
	p.Retarget(t, srv.URL)
	out.wait(t, regexp.MustCompile(`(?s)\[reconnected\].*n\d+\r\n`))

	srv.Signal(t, syscall.SIGTERM)
	out.wait(t, regexp.MustCompile(`the server is restarting; the session goes on; reconnecting…`))
	if err := srv.Wait(t, 20*time.Second); err != nil {
		t.Errorf("the server's exit: %v", err)
	}
	srv = srv.Restart(t)
	p.Retarget(t, srv.URL)
	out.wait(t, regexp.MustCompile(`(?s)(\[reconnected\].*){2}`))
	out.wait(t, regexp.MustCompile(`n`+strconv.Itoa(n)+`\r\n`))
	ptmx.Write([]byte("go\r"))

	err := waitExit(cmd)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("exit = %v, want status 7; screen tail %q", err, tail([]byte(out.buf.String())))
	}
	screen := reconnectNotes.ReplaceAllString(out.buf.String(), "")
	var want strings.Builder
	for i := 1; i <= n; i++ {
		want.WriteString("n" + strconv.Itoa(i) + "\r\n")
	}
	want.WriteString("go\r\n") // the line typed, echoed
	if screen != want.String() {
		t.Errorf("the screen with the reconnection notes taken out is not n1..n%d once each, in order:\n%q", n, screen)
	}
}

// TestE2ESecondServerRefused: a second server on the same database, from
// another data directory, is refused with the ownership error and exits
// non-zero, while the first keeps serving.
func TestE2ESecondServerRefused(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		db   func(t *testing.T, first *e2etest.Server) string
	}{
		{"SQLite", func(t *testing.T, first *e2etest.Server) string {
			return "sqlite:" + filepath.Join(first.DataDir, "ptyhost.db")
		}},
		{"PostgreSQL", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var first *e2etest.Server
			var db string
			if tt.db != nil {
				first = startKeeping(t, e2etest.Options{})
				db = tt.db(t, first)
			} else {
				db, _ = postgresSchemaDSN(t)
				first = startKeeping(t, e2etest.Options{Args: []string{"--db", db}})
			}
			id := first.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", counterScript}})

			o := first.Options()
			o.DataDir = t.TempDir()
			o.Args = append(o.Args, "--db", db)
			out, err := e2etest.RunRefused(t, o, 30*time.Second)
			if err == nil || !strings.Contains(out, ownedMessage) {
				t.Errorf("the second server: %v, want a non-zero exit saying %q\n%s", err, ownedMessage, out)
			}
			if code, body := first.Request(t, "GET", "/healthz", nil); code != http.StatusOK {
				t.Errorf("the first server after the second was refused: healthz %d %v", code, body)
			}
			// The refused server touched nothing: the session is still live
			// in the first one's records, and the first one still starts
			// sessions (a replay of old output would not show that).
			if st := first.Session(t, id)["status"]; st != "ACTIVE" && st != "IDLE" {
				t.Errorf("the session after the second server was refused: %v, want ACTIVE or IDLE", st)
			}
			fresh := first.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "echo still-$((6*7))-serving; sleep 60"}})
			first.Attach(t, fresh).WaitOutput("still-42-serving")
		})
	}
}

// ownedMessage is what a server refused the database says.
var ownedMessage = gormstore.ErrOwned.Error()

// TestE2EProtocolMismatchOnUpgrade: a plugin process left by a server
// whose plugin protocol differs (its reattach record says version 99) is
// not reattached: the new server says so, the session is recorded ERROR
// server_lost, and the old plugin ends itself at its orphan timeout.
func TestE2EProtocolMismatchOnUpgrade(t *testing.T) {
	t.Parallel()
	srv := startKeeping(t, e2etest.Options{Args: []string{"--orphan-timeout", "8s"}})
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", counterScript}})
	srv.Attach(t, id).WaitOutput("\n3\r\n")
	plugins := children(srv.Pid(t))
	if len(plugins) != 1 {
		t.Fatalf("server children %v, want the host plugin", plugins)
	}
	srv.Kill(t)
	setRecordProtocol(t, filepath.Join(srv.DataDir, "run", "host.reattach.json"), 99)

	srv = srv.Restart(t)
	if log := srv.Stderr(); !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "speaks protocol version 99") ||
		!strings.Contains(log, "its sessions are left to its orphan timeout") {
		t.Errorf("the new server's log does not say the plugin's protocol (99) is not ours and its sessions are left to the orphan timeout:\n%s", log)
	}
	rec := srv.Session(t, id)
	if rec["status"] != "ERROR" || !strings.Contains(fmt.Sprint(rec["status_reason"]), "server_lost") {
		t.Errorf("the session after the restart: %v, want ERROR server_lost", rec)
	}
	e2etest.Eventually(t, 30*time.Second, "the old plugin to end itself", func() bool { return !alive(plugins[0]) }, nil)
}

// setRecordProtocol sets the protocol version in a plugin's reattach
// record, as a record an older or newer ptyhost wrote would have it.
func setRecordProtocol(t *testing.T, path string, version int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the plugin's reattach record: %v", err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("the reattach record %s: %v", b, err)
	}
	found := false
	for k, v := range rec {
		if _, isNumber := v.(float64); isNumber && strings.Contains(strings.ToLower(k), "protocol") {
			rec[k], found = version, true
		}
	}
	if !found {
		t.Fatalf("no protocol version in the reattach record %s", b)
	}
	if b, err = json.Marshal(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
