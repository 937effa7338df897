package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// lsFields runs `ptyhost ls` against srv and returns the fields of the
// line of session id, keyed by the header's column names.
func lsFields(t *testing.T, srv *e2etest.Server, id string) map[string]string {
	t.Helper()
	var out, errOut syncBuffer
	if err := run(t.Context(), []string{"ls", "--server", srv.URL}, stdio{in: strings.NewReader(""), out: &out, err: &errOut}); err != nil {
		t.Fatalf("ls: %v; stderr %q", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	header := strings.Fields(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == id {
			m := map[string]string{}
			for i, h := range header {
				if i < len(f) {
					m[h] = f[i]
				}
			}
			return m
		}
	}
	t.Fatalf("ls does not list %s:\n%s", id, out.String())
	return nil
}

// waitStatus waits until session id has status want and returns its
// record.
func waitStatus(t *testing.T, srv *e2etest.Server, id, want string) map[string]any {
	t.Helper()
	var rec map[string]any
	e2etest.Eventually(t, 20*time.Second, id+" "+want, func() bool {
		rec = srv.Session(t, id)
		return rec["status"] == want
	}, func() string { return fmt.Sprint(rec) })
	return rec
}

// TestE2EDetachedSessionsStay: by default a session without a client has
// no idle deadline (it stays until it exits or is destroyed), and ls shows
// how long it has had no client.
func TestE2EDetachedSessionsStay(t *testing.T) {
	srv := startServer(t)
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}})
	if rec := srv.Session(t, id); rec["idle_timeout"] != "never" || rec["idle_deadline"] != nil || rec["detached_at"] == nil {
		t.Errorf("new session without a client: %v; want idle_timeout never, no idle_deadline, a detached_at", rec)
	}

	a := srv.Attach(t, id)
	a.Send("echo $((40+2))\r")
	a.WaitOutput("42")
	if rec := srv.Session(t, id); rec["status"] != "ACTIVE" || rec["detached_at"] != nil {
		t.Errorf("attached: %v; want ACTIVE without detached_at", rec)
	}
	if got := lsFields(t, srv, id)["DETACHED"]; got != "-" {
		t.Errorf("ls DETACHED of an attached session = %q, want -", got)
	}

	a.Conn.Close()
	rec := waitStatus(t, srv, id, "IDLE")
	if rec["detached_at"] == nil || rec["idle_deadline"] != nil {
		t.Errorf("detached: %v; want a detached_at and no idle_deadline", rec)
	}
	if got := lsFields(t, srv, id)["DETACHED"]; !regexp.MustCompile(`^\d+s$`).MatchString(got) {
		t.Errorf("ls DETACHED of a detached session = %q, want seconds such as 2s", got)
	}
}

// TestE2EIdleTimeoutPrecedence: the session's idle timeout wins over its
// environment's, which wins over the server's.
func TestE2EIdleTimeoutPrecedence(t *testing.T) {
	srv := startServer(t, "--idle-timeout", "1s")
	code, env := srv.Request(t, "POST", "/api/v1/environments", map[string]any{"id": "keep", "type": "HOST", "idle_timeout": "never"})
	if code != http.StatusCreated || env["idle_timeout"] != "never" {
		t.Fatalf("create environment: %d %v", code, env)
	}
	sh := []string{"/bin/sh"}
	server := srv.CreateSession(t, map[string]any{"command": sh})
	fromEnv := srv.CreateSession(t, map[string]any{"command": sh, "environment_id": "keep"})
	own := srv.CreateSession(t, map[string]any{"command": sh, "environment_id": "keep", "idle_timeout": "1s"})
	for id, want := range map[string]string{server: "1s", fromEnv: "never", own: "1s"} {
		if rec := srv.Session(t, id); rec["idle_timeout"] != want {
			t.Errorf("%s: idle_timeout %v, want %s", id, rec["idle_timeout"], want)
		}
	}
	// Never attached: each is idle since it started.
	for _, id := range []string{server, own} {
		if rec := waitStatus(t, srv, id, "TERMINATED"); rec["status_reason"] != "idle_timeout" {
			t.Errorf("%s: %v, want status_reason idle_timeout", id, rec)
		}
	}
	if rec := srv.Session(t, fromEnv); rec["status"] == "TERMINATED" || rec["idle_deadline"] != nil {
		t.Errorf("the environment's never: %v; want it running without idle_deadline", rec)
	}

	// A later change of the environment applies to new sessions.
	code, env = srv.Request(t, "PUT", "/api/v1/environments/keep", map[string]any{"idle_timeout": "2m"})
	if code != http.StatusOK || env["idle_timeout"] != "2m0s" {
		t.Errorf("update environment: %d %v", code, env)
	}
	later := srv.CreateSession(t, map[string]any{"command": sh, "environment_id": "keep"})
	if rec := srv.Session(t, later); rec["idle_timeout"] != "2m0s" || rec["idle_deadline"] == nil {
		t.Errorf("after the update: %v; want idle_timeout 2m0s and an idle_deadline", rec)
	}

	// Bad values are refused with the reason.
	for path, body := range map[string]map[string]any{
		"/api/v1/sessions":     {"environment_id": "host", "idle_timeout": "soon"},
		"/api/v1/environments": {"type": "HOST", "idle_timeout": "-5m"},
	} {
		if code, out := srv.Request(t, "POST", path, body); code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out["error"]), "idle_timeout") {
			t.Errorf("POST %s %v: %d %v, want 400 naming idle_timeout", path, body, code, out)
		}
	}
}

// TestE2EDetachMessage: the CLI's detach message says what becomes of the
// session.
func TestE2EDetachMessage(t *testing.T) {
	srv := startServer(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--server", srv.URL, "--", "/bin/sh"}, `which keeps running until it exits or is killed; reattach`},
		{[]string{"run", "--server", srv.URL, "--idle-timeout", "1h", "--", "/bin/sh"}, `which keeps running; it is destroyed after 1h0m0s with no writing client attached; reattach`},
	} {
		cmd, ptmx, out := startCLI(t, tt.args...)
		ptmx.Write([]byte("echo $((40+2))\r"))
		out.wait(t, regexp.MustCompile(`42\r\n`))
		ptmx.Write([]byte{0x1d})
		out.wait(t, regexp.MustCompile(`\[detached from session (\S+), `+tt.want))
		// The reader may not have the rest yet when the process exits:
		// wait for it, then for the exit.
		reattach := regexp.MustCompile(`reattach with 'ptyhost attach (\S+)'`)
		out.wait(t, reattach)
		if err := waitExit(cmd); err != nil {
			t.Errorf("%v: detach exit: %v", tt.args, err)
		}
		id := reattach.FindStringSubmatch(out.buf.String())
		t.Cleanup(func() { _, _, _ = srv.Do("DELETE", "/api/v1/sessions/"+id[1], nil) })
	}
}
