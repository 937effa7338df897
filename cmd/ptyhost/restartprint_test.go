package main

import (
	"strings"
	"testing"
)

// restart prints the whole ID of each session it restarted, and its help
// says so, as env update's does: it said nothing of its output.
func TestRestartPrintsIDsAsItsHelpSays(t *testing.T) {
	f := newFakeServer(t)
	f.respond("GET /api/v1/sessions/s1", 200, `{"id": "s1", "environment_id": "host", "status": "ACTIVE"}`)
	f.respond("POST /api/v1/sessions/s1/restart", 200, `{"id": "s1", "environment_id": "host", "status": "ACTIVE"}`)
	code, out, stderr := runCmd(t, "restart", "--server", f.srv.URL, "s1")
	if code != 0 || out != "s1\n" {
		t.Fatalf("restart s1: exit %d, stdout %q, stderr %q; want 0 and the ID", code, out, stderr)
	}
	if !strings.Contains(restartHelp, "prints the\nwhole ID of each session restarted") {
		t.Errorf("restart --help does not say what it prints:\n%s", restartHelp)
	}
}
