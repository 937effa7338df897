package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestClusterDeleteNodeLostSession: b is killed and a records b's session
// node_lost; a DELETE through a ends it for good (TERMINATED, destroyed):
// b, started again with the session still kept by its plugin, hangs it up
// instead of taking it up, and it stays ended.
func TestClusterDeleteNodeLostSession(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	a := startNode(t, dsn, "a")
	b := e2etest.Start(t, keepingNodeOptions(dsn, "b"))
	events := subscribe(t, a)
	id := b.CreateSession(t, map[string]any{"environment_id": "host-b", "command": []string{"/bin/sh"}})
	events.await(t, 10*time.Second, "session_created", id, "b")

	b.Kill(t)
	events.await(t, testNodeLease+5*time.Second, "session_error", id, "b")
	if code, body := a.Request(t, "DELETE", "/api/v1/sessions/"+id, nil); code != http.StatusNoContent {
		t.Fatalf("DELETE through a while b is away: %d %v", code, body)
	}
	destroyed := func(when string) {
		t.Helper()
		rec := a.Session(t, id)
		if reason, _ := rec["status_reason"].(string); rec["status"] != "TERMINATED" || !strings.HasPrefix(reason, "destroyed") {
			t.Errorf("%s: %v; want TERMINATED, destroyed", when, rec)
		}
	}
	destroyed("after DELETE")

	// b's Reconcile runs before it serves: by now it has dealt with the
	// session its plugin kept.
	b2 := b.Restart(t)
	destroyed("after b came back")
	events.await(t, 5*time.Second, "session_destroyed", id, "a")
	if n := events.count("session_resumed", id); n != 0 {
		t.Errorf("b took the destroyed session up again (%d session_resumed)", n)
	}
	if !strings.Contains(b2.Stderr(), "hung it up") {
		t.Errorf("b's log does not tell of hanging the destroyed session up:\n%s", b2.Stderr())
	}
	if code, body, err := b2.Do("GET", "/api/v1/sessions/"+id+"/attach", nil); err != nil || code != http.StatusGone {
		t.Errorf("attach on b after it came back: %d %v %v; want 410", code, body, err)
	}
}
