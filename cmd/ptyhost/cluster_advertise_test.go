package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestClusterAdvertiseURLOfAnotherNode: node f is started with node a's
// --advertise-url (copied from a's configuration). A request that a
// forwards to f then reaches a itself, which refuses it with a 502 naming
// f's --advertise-url as the cause, and logs it, rather than serve it as
// if it were meant for a: a create placed on f was a 400 telling the
// client to create through any node's API, which it had done, and a
// DELETE of f's session a 508 saying to try again.
func TestClusterAdvertiseURLOfAnotherNode(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	a := startReachableNode(t, dsn, "a")
	f := startReachableNode(t, dsn, "f", "--advertise-url", a.URL) // the later flag wins
	const want = "node f's --advertise-url leads to another node"

	var code int
	var body map[string]any
	e2etest.Eventually(t, 20*time.Second, "a to place a session on f", func() bool {
		var err error
		code, body, err = a.Do("POST", "/api/v1/sessions", map[string]any{"environment_id": "host-f", "command": []string{"/bin/sh"}})
		return err == nil && code != http.StatusServiceUnavailable // f not ready yet
	}, func() string { return fmt.Sprint(code, body) })
	if msg, _ := body["error"].(string); code != http.StatusBadGateway || !strings.Contains(msg, want) {
		t.Errorf("create in host-f through a: %d %v; want 502 saying %q", code, body, want)
	}

	id := createOn(t, f, "f", "/bin/sh")
	if code, msg := request(t, a, "DELETE", "/api/v1/sessions/"+id); code != http.StatusBadGateway || !strings.Contains(msg, want) {
		t.Errorf("DELETE of f's session through a: %d %q; want 502 saying %q", code, msg, want)
	}
	if log := a.Stderr(); !strings.Contains(log, "--advertise-url leads here") || !strings.Contains(log, "meant_for=f") {
		t.Errorf("a's log does not say a request meant for f reached it:\n%s", log)
	}
}
