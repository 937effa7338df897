package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
)

// fullWriter fails the writes that contain fail (every write if fail is
// empty) as a write to a full /dev/stdout does.
type fullWriter struct{ fail string }

func (w fullWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), w.fail) {
		return 0, &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}
	}
	return len(p), nil
}

// A command that changes something and then prints the result fails
// (exit 1, the write's error) when the result cannot be written: 'env
// add' printed the generated ID to nowhere and exited 0.
func TestChangeOutputWriteFails(t *testing.T) {
	f := newFakeServer(t)
	f.respond("POST /api/v1/environments", 201, `{"id": "e1", "name": "x", "type": "HOST", "config": {}}`)
	f.respond("PUT /api/v1/environments/e1", 200, `{"id": "e1", "name": "y", "type": "HOST", "config": {}}`)
	f.respond("GET /api/v1/sessions/s1", 200, `{"id": "s1", "environment_id": "host", "status": "ACTIVE"}`)
	f.respond("POST /api/v1/sessions/s1/restart", 200, `{"id": "s1", "environment_id": "host", "status": "ACTIVE"}`)
	f.respond("POST /api/v1/sessions/prune", 200, `{"deleted": 1}`)
	f.respond("POST /api/v1/plugins/host/restart", 200, `{"name": "host", "state": "running", "pid": 7}`)
	f.respond("POST /api/v1/plugins/mute/restart", 200, `{"name": "mute", "state": "starting"}`)
	f.respond("GET /api/v1/plugins", 200, `{"plugins": [{"name": "bad", "state": "failed", "reason": "it crashed"}]}`)
	const want = "ptyhost: write /dev/stdout: no space left on device\n"
	for _, tt := range []struct {
		args []string
		fail string
	}{
		{[]string{"env", "add", "--type", "HOST", "--name", "x"}, ""},
		{[]string{"env", "update", "e1", "--name", "y"}, ""},
		{[]string{"restart", "s1"}, ""},
		{[]string{"prune"}, ""},
		{[]string{"plugins", "restart", "host"}, ""},
		{[]string{"plugins", "restart", "mute"}, ""},
		{[]string{"plugins"}, "it crashed"}, // the reasons after the table
	} {
		var errOut syncBuffer
		err := run(t.Context(), append(tt.args, "--server", f.srv.URL), stdio{in: strings.NewReader(""), out: fullWriter{tt.fail}, err: &errOut})
		if code := exitCode(err, &errOut); code != 1 || errOut.String() != want {
			t.Errorf("%q > /dev/full: exit %d, stderr %q; want 1, %q", tt.args, code, errOut.String(), want)
		}
	}
}

// stop fails too (exit 1, the write's error) when its last line, which
// says the server has stopped and what becomes of the sessions, cannot be
// written to stdout; the same stop with a stdout that takes it is 0.
func TestStopOutputWriteFails(t *testing.T) {
	for _, hangUp := range []bool{false, true} {
		for _, full := range []bool{true, false} {
			srv := stoppingServer(t, hangUp)
			args := []string{"stop", "--server", srv.URL}
			if hangUp {
				args = append(args, "--hang-up")
			}
			var out io.Writer = fullWriter{}
			if !full {
				out = io.Discard
			}
			var errOut syncBuffer
			err := run(t.Context(), args, stdio{in: strings.NewReader(""), out: out, err: &errOut})
			code := exitCode(err, &errOut)
			switch {
			case full && (code != 1 || errOut.String() != "ptyhost: write /dev/stdout: no space left on device\n"):
				t.Errorf("%q > /dev/full: exit %d, stderr %q; want 1 and the write's error", args, code, errOut.String())
			case !full && code != 0:
				t.Errorf("%q: exit %d, stderr %q; want 0", args, code, errOut.String())
			}
		}
	}
}

// stoppingServer answers POST /api/v1/server/stop with hang_up as asked,
// then stops answering, as a server that stops does; it answers any
// other request {}.
func stoppingServer(t *testing.T, hangUp bool) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/api/v1/server/stop" {
			fmt.Fprintf(w, `{"hang_up": %t}`, hangUp)
			go srv.Close()
			return
		}
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}
