package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestClusterLingeringCopyHidesNothing: session x ends on node b and
// lingers there; x is created again on a, its id being free. Through b,
// x reads as a's, lists as a's, attaches to a's, and a DELETE ends a's:
// b's lingering copy answers none of them.
func TestClusterLingeringCopyHidesNothing(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	a := startReachableNode(t, dsn, "a")
	b := startReachableNode(t, dsn, "b")
	b.CreateSession(t, map[string]any{"id": "x", "environment_id": "host-b", "command": []string{"true"}})
	e2etest.Eventually(t, 10*time.Second, "x to end on b", func() bool {
		return b.Session(t, "x")["status"] == "TERMINATED"
	}, func() string { return fmt.Sprint(b.Session(t, "x")) })
	// b answers with its writes still on their way to the database; x's
	// id is free to the other nodes once its end is stored there.
	waitStored(t, dsn, "x", core.StatusTerminated)

	code, rec := a.Request(t, "POST", "/api/v1/sessions", map[string]any{"id": "x", "environment_id": "host-a",
		"command": []string{"/bin/sh", "-c", "printf 'hello from a\\n'; exec cat"}})
	if code != http.StatusCreated || rec["node"] != "a" {
		t.Fatalf("create x again on a: %d %v", code, rec)
	}
	// Through b, x reads as a last wrote it: STARTING, then ACTIVE.
	e2etest.Eventually(t, 10*time.Second, "x to read through b as a's ACTIVE x", func() bool {
		rec := b.Session(t, "x")
		return rec["node"] == "a" && rec["status"] == "ACTIVE"
	}, func() string { return fmt.Sprint(b.Session(t, "x")) })
	if code, body := b.Request(t, "GET", "/api/v1/sessions", nil); code != http.StatusOK || !listsOn(body, "x", "a", "ACTIVE") {
		t.Errorf("list through b: %d %v; want x ACTIVE on a", code, body)
	}

	term := b.Attach(t, "x")
	term.WaitOutput("hello from a")
	term.Send("ping\r")
	term.WaitOutput("ping\r\nping\r\n")
	term.Conn.Close()

	if code, body := b.Request(t, "DELETE", "/api/v1/sessions/x", nil); code != http.StatusNoContent {
		t.Fatalf("DELETE x through b: %d %v", code, body)
	}
	if rec := a.Session(t, "x"); rec["node"] != "a" || rec["status"] != "TERMINATED" {
		t.Errorf("a's x after DELETE through b: %v; want it destroyed", rec)
	}
}

// listsOn reports whether a listing's body holds session id on node with
// status.
func listsOn(body map[string]any, id, node, status string) bool {
	list, _ := body["sessions"].([]any)
	for _, s := range list {
		if s, _ := s.(map[string]any); s["id"] == id {
			return s["node"] == node && s["status"] == status
		}
	}
	return false
}
