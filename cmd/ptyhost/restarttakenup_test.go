package main

// Restart in place of a session taken up after a server restart, through
// the real server binary and the real HOST plugin.

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestE2ERestartTakenUpSession: the server is killed with SIGKILL while a
// session runs; a new server takes it up; a restart in place respawns it
// from its stored command, and the new process's output continues the
// offsets a client resumed at. The create's env was not stored, so the
// new process runs without it; ls shows the stored command.
func TestE2ERestartTakenUpSession(t *testing.T) {
	t.Parallel()
	srv := startKeeping(t, e2etest.Options{})
	argv := []string{"/bin/sh", "-c", "echo run:$RUN; exec cat"}
	id := srv.CreateSession(t, map[string]any{"command": argv, "env": map[string]string{"RUN": "one"}})
	a := srv.Attach(t, id)
	a.WaitOutput("run:one\r\n")
	off := a.Conn.Offset()

	srv.Kill(t)
	srv = srv.Restart(t)
	waitLive(t, srv, id)
	rec := srv.Session(t, id)
	if cmd, _ := rec["command"].([]any); !slices.Equal(cmd, []any{argv[0], argv[1], argv[2]}) {
		t.Fatalf("the record after the server restart: %v, want command %q", rec, argv)
	}
	if _, ok := rec["env"]; ok {
		t.Fatalf("the record shows env: %v", rec)
	}

	b := srv.AttachAt(t, id, off)
	if got := b.Hello().Offset; got != off {
		t.Fatalf("resumed at %d, want %d", got, off)
	}
	code, out := srv.Request(t, "POST", restartPath(id), nil)
	if code != http.StatusOK || out["restarts"] != 1.0 {
		t.Fatalf("restart of a session taken up: %d %v, want 200 with restarts 1", code, out)
	}
	m := b.WaitControl("restarted")
	if want := off + int64(len(b.Out)); m.Offset != want {
		t.Fatalf("restarted at offset %d, want %d (where the old output ended)", m.Offset, want)
	}
	b.WaitOutput("run:\r\n") // the new process, without the create's env
	b.Send("typed-after-restart\r")
	b.WaitOutput("typed-after-restart")
	if got, want := b.Conn.Offset(), off+int64(len(b.Out)); got != want {
		t.Fatalf("offset %d after %d bytes from %d: the output does not continue the offsets", got, len(b.Out), off)
	}

	// A client attaching from the start gets the old process's output,
	// then the new one's.
	c := srv.Attach(t, id)
	c.WaitOutput("typed-after-restart")
	if i, j := bytes.Index(c.Out, []byte("run:one")), bytes.Index(c.Out, []byte("run:\r\n")); i < 0 || j < i {
		t.Errorf("replay %q: want run:one before run:", c.Out)
	}

	// ls shows the command the record keeps.
	code2, lsOut, stderr := cli(t, strings.TrimPrefix(srv.URL, "http://"), "ls")
	if code2 != 0 || !strings.Contains(lsOut, "/bin/sh -c") {
		t.Errorf("ls: exit %d, stderr %q, output:\n%s\nwant the command in the COMMAND column", code2, stderr, lsOut)
	}
}

// refusedAttach dials session id and fails the test unless the server
// refuses it with 409 naming the session's limit of max clients.
func refusedAttach(t *testing.T, srv *e2etest.Server, id, max string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	c, err := wsproto.Dial(ctx, srv.AttachURL(id), wsproto.DialOptions{Token: srv.Token})
	if err == nil {
		c.Close()
		t.Fatalf("attach %s: accepted, want 409", id)
	}
	var he *wsproto.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusConflict || !strings.Contains(he.Message, "max clients "+max) {
		t.Fatalf("attach %s: %v, want 409 naming max clients %s", id, err, max)
	}
}

// TestE2EPerSessionLimitsSurviveServerRestart: a session's own
// max_clients and size_policy apply through the real server, are stored,
// and still apply after a kill -9 and a new server.
func TestE2EPerSessionLimitsSurviveServerRestart(t *testing.T) {
	t.Parallel()
	srv := startKeeping(t, e2etest.Options{})
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}, "max_clients": 1, "size_policy": "smallest"})
	a := srv.Attach(t, id)
	refusedAttach(t, srv, id, "1")
	for field, bad := range map[string]any{"max_clients": -1, "size_policy": "biggest"} {
		code, out := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": "host", field: bad})
		if msg, _ := out["error"].(string); code != http.StatusBadRequest || !strings.Contains(msg, strings.Split(field, "_")[0]) {
			t.Errorf("%s %v: %d %v, want 400 naming it", field, bad, code, out)
		}
	}
	a.Conn.Close()

	srv.Kill(t)
	srv = srv.Restart(t)
	waitLive(t, srv, id)
	if rec := srv.Session(t, id); rec["max_clients"] != 1.0 || rec["size_policy"] != "smallest" {
		t.Fatalf("the record after the server restart: %v, want max_clients 1, size_policy smallest", rec)
	}
	srv.Attach(t, id)
	refusedAttach(t, srv, id, "1")
}
