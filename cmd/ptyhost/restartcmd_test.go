package main

// Restart in place and initial input, through the real server and the real
// HOST plugin.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// restartPath is the restart endpoint of session id.
func restartPath(id string) string { return "/api/v1/sessions/" + id + "/restart" }

// TestE2ERestartInPlace: a restart kills the process and starts a new one
// under the same id; the attached client stays attached and reads the new
// process's output after the old one's, at the following offsets; the
// record counts the restarts; a restart may change the variables and the
// command, and keeps them for the next.
func TestE2ERestartInPlace(t *testing.T) {
	srv := startServer(t)
	id := srv.CreateSession(t, map[string]any{
		"command": []string{"/bin/sh", "-c", "echo run:$RUN; exec cat"},
		"env":     map[string]string{"RUN": "one"},
	})
	a := srv.Attach(t, id)
	a.WaitOutput("run:one")

	code, out := srv.Request(t, "POST", restartPath(id), map[string]any{"env": map[string]string{"RUN": "two"}})
	if code != http.StatusOK || out["restarts"] != 1.0 || out["id"] != id {
		t.Fatalf("restart: %d %v, want 200 with restarts 1", code, out)
	}
	if m := a.WaitControl("restarted"); m.Offset <= 0 {
		t.Fatalf("restarted message %+v, want the new process's first offset", m)
	}
	a.WaitOutput("run:two")
	a.Send("typed-after-restart\r")
	a.WaitOutput("typed-after-restart")

	// A client attaching now replays from the first byte: the old
	// process's output, then the new one's, at the offsets that follow.
	b := srv.Attach(t, id)
	if off := b.Hello().Offset; off != 0 {
		t.Fatalf("hello offset %d, want 0", off)
	}
	b.WaitOutput("run:two")
	if i, j := bytes.Index(b.Out, []byte("run:one")), bytes.Index(b.Out, []byte("run:two")); i < 0 || j < i {
		t.Fatalf("replay %q: want run:one before run:two", b.Out)
	}
	rec := srv.Session(t, id)
	if rec["restarts"] != 1.0 || rec["status"] != "ACTIVE" || rec["exit_code"] != nil {
		t.Fatalf("record after restart: %v", rec)
	}

	// No body: restarted as last time, with RUN=two.
	if code, out := srv.Request(t, "POST", restartPath(id), nil); code != http.StatusOK || out["restarts"] != 2.0 {
		t.Fatalf("second restart: %d %v", code, out)
	}
	if err := a.Until(func() bool { return bytes.Count(a.Out, []byte("run:two")) == 2 }); err != nil {
		t.Fatalf("waiting for the third process: %v", err)
	}

	// A new command.
	code, out = srv.Request(t, "POST", restartPath(id), map[string]any{"command": []string{"/bin/sh", "-c", "echo other:$RUN; exec cat"}})
	if code != http.StatusOK || out["restarts"] != 3.0 {
		t.Fatalf("restart with a command: %d %v", code, out)
	}
	a.WaitOutput("other:two")
	e2etest.Eventually(t, 10*time.Second, "the restart count stored", func() bool {
		return srv.Session(t, id)["restarts"] == 3.0
	}, func() string { return "" })
}

// TestE2ERestartRefusals: bad bodies are 400, an unknown session 404, an
// ended one 409, GET 405; a request a browser page could send, or one
// without the token, changes nothing.
func TestE2ERestartRefusals(t *testing.T) {
	srv := startServer(t, "--token", "t0ken-t0ken-t0ken")
	srv.Token = "t0ken-t0ken-t0ken"
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "echo up; exec cat"}})
	ended := srv.CreateSession(t, map[string]any{"command": []string{"/bin/true"}})
	e2etest.Eventually(t, 10*time.Second, "the short session to end", func() bool {
		return srv.Session(t, ended)["status"] == "TERMINATED"
	}, func() string { return "" })

	for _, tt := range []struct {
		name string
		id   string
		body any
		want int
	}{
		{"unknown field", id, map[string]any{"comand": []string{"sh"}}, 400},
		{"empty command[0]", id, map[string]any{"command": []string{""}}, 400},
		{"NUL in the command", id, map[string]any{"command": []string{"sh\x00"}}, 400},
		{"bad variable name", id, map[string]any{"env": map[string]string{"A=B": "x"}}, 400},
		{"not an object", id, "[]", 400},
		{"trailing data", id, `{} {}`, 400},
		{"unknown session", "nosuch", nil, 404},
		{"ended session", ended, nil, 409},
	} {
		code, out := srv.Request(t, "POST", restartPath(tt.id), tt.body)
		if msg, _ := out["error"].(string); code != tt.want || msg == "" {
			t.Errorf("%s: %d %v, want %d with an error message", tt.name, code, out, tt.want)
		}
	}
	auth := "Bearer t0ken-t0ken-t0ken"
	for _, tt := range []struct {
		name   string
		method string
		hdr    map[string]string
		want   int
	}{
		{"GET", "GET", map[string]string{"Authorization": auth}, 405},
		{"no token", "POST", map[string]string{"Content-Type": "application/json"}, 401},
		{"text/plain", "POST", map[string]string{"Authorization": auth, "Content-Type": "text/plain"}, 415},
		{"another origin", "POST", map[string]string{"Authorization": auth, "Content-Type": "application/json", "Origin": "https://evil.example"}, 403},
		{"cross-site fetch", "POST", map[string]string{"Authorization": auth, "Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403},
	} {
		code, out, _ := rawRequest(t, srv, tt.method, restartPath(id), `{}`, tt.hdr)
		if msg, _ := out["error"].(string); code != tt.want || msg == "" {
			t.Errorf("%s: %d %v, want %d with an error message", tt.name, code, out, tt.want)
		}
	}
	if rec := srv.Session(t, id); rec["restarts"] != nil {
		t.Errorf("refused restarts were counted: %v", rec)
	}
}

// TestE2EInitialInput: the create request's input is typed once the
// program has written its first output, and again into each restarted
// process; too long an input is 400.
func TestE2EInitialInput(t *testing.T) {
	srv := startServer(t)
	id := srv.CreateSession(t, map[string]any{
		"command": []string{"/bin/sh", "-c", "echo ready; read line; echo got:$line; exec cat"},
		"input":   "hello\n",
	})
	a := srv.Attach(t, id)
	a.WaitOutput("got:hello")
	if code, out := srv.Request(t, "POST", restartPath(id), nil); code != http.StatusOK {
		t.Fatalf("restart: %d %v", code, out)
	}
	if err := a.Until(func() bool { return bytes.Count(a.Out, []byte("got:hello")) == 2 }); err != nil {
		t.Fatalf("the restarted process did not get the input: %v", err)
	}

	// A program that writes nothing gets it after the settle time.
	quiet := srv.CreateSession(t, map[string]any{
		"command": []string{"/bin/sh", "-c", "stty -echo; read line; echo got:$line; exec cat"},
		"input":   "silent\n",
	})
	srv.Attach(t, quiet).WaitOutput("got:silent")

	code, out := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": "host", "input": strings.Repeat("x", 64<<10+1)})
	if msg, _ := out["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, "input") {
		t.Fatalf("too long an input: %d %v, want 400 naming input", code, out)
	}
}

// TestRestartCommand: `ptyhost restart PREFIX` restarts the session the
// prefix names and prints its id; an unknown id exits 1.
func TestRestartCommand(t *testing.T) {
	srv := startServer(t)
	id := srv.CreateSession(t, map[string]any{"id": "restartme-1", "command": []string{"/bin/sh", "-c", "echo gen; exec cat"}})
	a := srv.Attach(t, id)
	a.WaitOutput("gen")
	var out, errOut bytes.Buffer
	if err := runRestart(t.Context(), []string{"--server", srv.URL, "restartme"}, stdio{out: &out, err: &errOut}); err != nil {
		t.Fatalf("restart: %v (%s)", err, errOut.String())
	}
	if got := strings.TrimSpace(out.String()); got != id {
		t.Errorf("printed %q, want %q", got, id)
	}
	if err := a.Until(func() bool { return bytes.Count(a.Out, []byte("gen")) == 2 }); err != nil {
		t.Fatal(err)
	}
	err := runRestart(t.Context(), []string{"--server", srv.URL, "nosuch"}, stdio{out: &out, err: &errOut})
	if err == nil || exitCode(err, &errOut) != 1 {
		t.Errorf("restart of an unknown id: %v, want exit 1", err)
	}
	if err := runRestart(t.Context(), []string{"--server", srv.URL}, stdio{out: &out, err: &errOut}); err == nil {
		t.Error("restart without an id succeeded")
	}
}

// TestE2EUnsetEnv: a session's unset_env removes inherited variables and
// leaves the rest, TERM and COLORTERM among them; bad names are 400.
func TestE2EUnsetEnv(t *testing.T) {
	t.Setenv("RESTARTTEST_DROPME", "inherited")
	t.Setenv("RESTARTTEST_KEEP", "kept")
	srv := startServer(t)
	id := srv.CreateSession(t, map[string]any{
		"command":   []string{"/bin/sh", "-c", `echo "[${RESTARTTEST_DROPME-unset}|$RESTARTTEST_KEEP|$TERM|$COLORTERM]"; exec cat`},
		"unset_env": []string{"RESTARTTEST_DROPME"},
	})
	srv.Attach(t, id).WaitOutput("[unset|kept|xterm-256color|truecolor]")

	for _, tt := range []struct {
		name string
		body map[string]any
	}{
		{"empty name", map[string]any{"unset_env": []string{""}}},
		{"name with =", map[string]any{"unset_env": []string{"A=B"}}},
		{"set and unset", map[string]any{"env": map[string]string{"A": "1"}, "unset_env": []string{"A"}}},
		{"not a list", map[string]any{"unset_env": "A"}},
	} {
		tt.body["environment_id"] = "host"
		code, out := srv.Request(t, "POST", "/api/v1/sessions", tt.body)
		if msg, _ := out["error"].(string); code != http.StatusBadRequest || msg == "" {
			t.Errorf("%s: %d %v, want 400 with an error message", tt.name, code, out)
		}
	}
}

// TestRunSendsInputAndUnsetEnv: run's --input and --unset-env go into the
// create request; a bad --unset-env is a usage error.
func TestRunSendsInputAndUnsetEnv(t *testing.T) {
	f := newFakeServer(t)
	f.respond("GET /api/v1/environments", 200, `{"environments": [{"id": "host", "type": "HOST", "config": {}}]}`)
	pr, stdin := newStdin(t)
	c := startCmd(t.Context(), []string{"run", "--server", f.srv.URL, "--input", "hi\n", "--unset-env", "A,B", "--unset-env", "C"}, pr)
	typeIn(t, stdin, "exit 0\n")
	if code := c.wait(t); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, c.err.String())
	}
	r := f.requestsSoFar()
	if len(r) < 2 || r[1].method+" "+r[1].path != "POST /api/v1/sessions" {
		t.Fatalf("requests %+v", r)
	}
	var body struct {
		Input    string   `json:"input"`
		UnsetEnv []string `json:"unset_env"`
	}
	if err := json.Unmarshal([]byte(r[1].body), &body); err != nil {
		t.Fatal(err)
	}
	if body.Input != "hi\n" || strings.Join(body.UnsetEnv, " ") != "A B C" {
		t.Errorf("sent input %q unset_env %q", body.Input, body.UnsetEnv)
	}

	bad := startCmd(t.Context(), []string{"run", "--server", f.srv.URL, "--unset-env", "A=1"}, strings.NewReader(""))
	if code := bad.wait(t); code != 2 && code != 1 {
		t.Errorf("--unset-env A=1: exit %d, want a usage error", code)
	}
}

// TestE2EDockerRestartAndUnsetEnv: a DOCKER session without a variable its
// environment's config sets (unset_env), restarted in place into a new
// container that reads on at the next offsets.
func TestE2EDockerRestartAndUnsetEnv(t *testing.T) {
	img := dockerImage(t)
	srv := e2etest.Start(t, e2etest.Options{Run: runServer, Plugins: []string{"host", "docker"}, WaitPlugins: true})
	srv.CreateEnvironment(t, "dock", "DOCKER", map[string]any{
		"image": img, "pull": "never",
		"env": map[string]string{"CFG_DROP": "x", "CFG_KEEP": "k"},
	})
	id := srv.CreateSession(t, map[string]any{
		"environment_id": "dock",
		"command":        []string{"/bin/sh", "-c", `echo "[${CFG_DROP-unset}|$CFG_KEEP|$TERM|$COLORTERM]"; exec cat`},
		"unset_env":      []string{"CFG_DROP"},
	})
	a := srv.Attach(t, id)
	const want = "[unset|k|xterm-256color|truecolor]"
	a.WaitOutput(want)
	if code, out := srv.Request(t, "POST", restartPath(id), nil); code != http.StatusOK || out["restarts"] != 1.0 {
		t.Fatalf("restart: %d %v", code, out)
	}
	if err := a.Until(func() bool { return bytes.Count(a.Out, []byte(want)) == 2 }); err != nil {
		t.Fatalf("waiting for the new container's output: %v", err)
	}
	a.Send("after\r")
	a.WaitOutput("after")
}

// TestE2ESSHUnsetEnvAndRestart: an SSH session without a variable its
// environment's config sets and one the remote login has, restarted in
// place over a new channel.
func TestE2ESSHUnsetEnvAndRestart(t *testing.T) {
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
	if err := os.WriteFile(knownHosts, []byte("["+host+"]:"+port+" "+string(pub)), 0o600); err != nil {
		t.Fatal(err)
	}
	portNum, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	srv := e2etest.Start(t, e2etest.Options{Run: runServer, Plugins: []string{"host", "ssh"}, WaitPlugins: true})
	srv.CreateEnvironment(t, "remote", "SSH", map[string]any{
		"host": host, "port": portNum, "user": user, "identity_file": key, "known_hosts": knownHosts,
		"env": map[string]string{"CFG_DROP": "x", "CFG_KEEP": "k"},
	})
	id := srv.CreateSession(t, map[string]any{
		"environment_id": "remote",
		"command":        []string{"/bin/sh", "-c", `echo "[${CFG_DROP-unset}|$CFG_KEEP|${HOME:+home}|$COLORTERM]"; exec cat`},
		"unset_env":      []string{"CFG_DROP", "HOME"},
	})
	a := srv.Attach(t, id)
	const want = "[unset|k||truecolor]"
	a.WaitOutput(want)
	if code, out := srv.Request(t, "POST", restartPath(id), nil); code != http.StatusOK || out["restarts"] != 1.0 {
		t.Fatalf("restart: %d %v", code, out)
	}
	if err := a.Until(func() bool { return bytes.Count(a.Out, []byte(want)) == 2 }); err != nil {
		t.Fatalf("waiting for the new channel's output: %v", err)
	}

	code, out := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": "remote", "unset_env": []string{"NOT-PORTABLE"}})
	if msg, _ := out["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, "NOT-PORTABLE") {
		t.Errorf("unset_env NOT-PORTABLE over SSH: %d %v, want 400 naming it", code, out)
	}
}

// TestE2ENeverEnv: serve's --never-env keeps a variable from every
// session, inherited or asked for; a bad name is a usage error.
func TestE2ENeverEnv(t *testing.T) {
	t.Setenv("RESTARTTEST_NEVER", "inherited")
	srv := startServer(t, "--never-env", "RESTARTTEST_NEVER,RESTARTTEST_ASKED")
	id := srv.CreateSession(t, map[string]any{
		"command": []string{"/bin/sh", "-c", `echo "[${RESTARTTEST_NEVER-unset}|${RESTARTTEST_ASKED-unset}|$OK]"; exec cat`},
		"env":     map[string]string{"RESTARTTEST_ASKED": "1", "OK": "ok"},
	})
	srv.Attach(t, id).WaitOutput("[unset|unset|ok]")

	var out, errOut bytes.Buffer
	err := run(t.Context(), []string{"serve", "--never-env", "A=B"}, stdio{in: strings.NewReader(""), out: &out, err: &errOut})
	if code := exitCode(err, &errOut); code != 2 || !strings.Contains(errOut.String(), "never-env") {
		t.Errorf("--never-env A=B: exit %d, stderr %q; want 2 naming the flag", code, errOut.String())
	}
}

// TestRestartIsACommand: `ptyhost restart` is dispatched and has help.
func TestRestartIsACommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"restart", "--help"}, stdio{in: strings.NewReader(""), out: &out, err: &errOut}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Usage: ptyhost restart") {
		t.Errorf("help %q", out.String())
	}
}

// TestE2EEnvironmentUnsetEnv: an environment's unset_env keeps a variable
// from its sessions; it is stored, shown, and changed by PUT for the
// sessions created after; bad names are 400.
func TestE2EEnvironmentUnsetEnv(t *testing.T) {
	t.Setenv("RESTARTTEST_ENVDROP", "inherited")
	srv := startServer(t)
	code, out := srv.Request(t, "POST", "/api/v1/environments", map[string]any{"id": "trim", "type": "HOST", "unset_env": []string{"RESTARTTEST_ENVDROP"}})
	if code != http.StatusCreated || fmt.Sprint(out["unset_env"]) != "[RESTARTTEST_ENVDROP]" {
		t.Fatalf("create: %d %v", code, out)
	}
	_, env := srv.Request(t, "GET", "/api/v1/environments/trim", nil)
	if fmt.Sprint(env["unset_env"]) != "[RESTARTTEST_ENVDROP]" {
		t.Fatalf("stored environment %v", env)
	}
	argv := []string{"/bin/sh", "-c", `echo "[${RESTARTTEST_ENVDROP-unset}]"; exec cat`}
	id := srv.CreateSession(t, map[string]any{"environment_id": "trim", "command": argv})
	srv.Attach(t, id).WaitOutput("[unset]")

	if code, out := srv.Request(t, "PUT", "/api/v1/environments/trim", map[string]any{"unset_env": []string{}}); code != http.StatusOK || out["unset_env"] != nil {
		t.Fatalf("PUT unset_env []: %d %v", code, out)
	}
	id = srv.CreateSession(t, map[string]any{"environment_id": "trim", "command": argv})
	srv.Attach(t, id).WaitOutput("[inherited]")

	for _, tt := range []struct {
		method, path string
		body         map[string]any
	}{
		{"POST", "/api/v1/environments", map[string]any{"type": "HOST", "unset_env": []string{"A=B"}}},
		{"POST", "/api/v1/environments", map[string]any{"type": "HOST", "unset_env": []string{""}}},
		{"PUT", "/api/v1/environments/trim", map[string]any{"unset_env": []string{"A=B"}}},
		{"PUT", "/api/v1/environments/trim", map[string]any{"unset_env": "A"}},
	} {
		code, out := srv.Request(t, tt.method, tt.path, tt.body)
		if msg, _ := out["error"].(string); code != http.StatusBadRequest || msg == "" {
			t.Errorf("%s %s %v: %d %v, want 400", tt.method, tt.path, tt.body, code, out)
		}
	}
}
