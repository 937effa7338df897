package main

import (
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
