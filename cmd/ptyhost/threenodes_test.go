package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestThreeNodes is issue 14's whole story on one machine: three nodes of
// one cluster on three ports over one PostgreSQL. A session created
// through a in an environment b serves runs on b; attached through c it
// shows b's output and takes input, with the same bytes at the same
// offsets as on b; `ptyhost ls` on every node lists every node's
// sessions; kill -9 of b records its sessions node_lost within its lease
// (and a sweep), while a and c go on serving theirs.
func TestThreeNodes(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	a := startReachableNode(t, dsn, "a")
	b := startReachableNode(t, dsn, "b")
	c := startReachableNode(t, dsn, "c")

	// Created through a, in b's own environment: placed on b.
	id := a.CreateSession(t, map[string]any{"environment_id": "host-b",
		"command": []string{"/bin/sh", "-c", `printf 'hello from b\n'; exec cat`}})
	for name, srv := range map[string]*e2etest.Server{"a": a, "b": b, "c": c} {
		if rec := srv.Session(t, id); rec["node"] != "b" {
			t.Fatalf("the session created through a, as %s reads it: node %v, want b", name, rec["node"])
		}
	}

	// Attached through c: b's output, input accepted, offsets exact.
	tc := attachThrough(t, c, "c", id)
	direct, via := checkResumed(t, b, c, id, tc.Out, 5)
	direct.Conn.Close()
	via.Conn.Close()

	// Every node lists every node's sessions.
	idA := createOn(t, a, "a", "/bin/sh")
	idC := createOn(t, c, "c", "/bin/sh")
	want := []string{id, idA, idC}
	slices.Sort(want)
	for name, srv := range map[string]*e2etest.Server{"a": a, "b": b, "c": c} {
		code, out, stderr := cli(t, srv.URL, "ls", "--json")
		if code != 0 {
			t.Fatalf("ls on %s: exit %d: %s", name, code, stderr)
		}
		var listed []struct {
			ID   string `json:"id"`
			Node string `json:"node"`
		}
		if err := json.Unmarshal([]byte(out), &listed); err != nil {
			t.Fatalf("ls --json on %s: %v: %s", name, err, out)
		}
		var got []string
		for _, s := range listed {
			got = append(got, s.ID)
			if wantNode := map[string]string{id: "b", idA: "a", idC: "c"}[s.ID]; s.Node != wantNode {
				t.Errorf("ls on %s: session %s on node %q, want %q", name, s.ID, s.Node, wantNode)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("ls on %s lists %v, want %v", name, got, want)
		}
	}

	// kill -9 of b: its session is node_lost within the lease and a
	// sweep (every fifth of the lease); a's and c's go on.
	events := subscribe(t, a)
	b.Kill(t)
	killed := time.Now()
	ev := events.await(t, testNodeLease+testNodeLease/5+3*time.Second, "session_error", id, "b")
	t.Logf("b's session recorded node_lost %v after SIGKILL (lease %v)", time.Since(killed).Round(time.Millisecond), testNodeLease)
	if e, _ := ev["error"].(string); !strings.HasPrefix(e, "node_lost") {
		t.Errorf("the event's error %q, want node_lost", e)
	}
	if rec := c.Session(t, id); rec["status"] != "ERROR" || !strings.HasPrefix(rec["status_reason"].(string), "node_lost") {
		t.Errorf("b's session as c reads it: %v; want ERROR node_lost", rec)
	}
	if err := tc.WaitEnd(); err == nil {
		t.Errorf("the client attached to b's session through c was not closed")
	}
	for name, pair := range map[string]struct {
		srv *e2etest.Server
		id  string
	}{"a": {a, idA}, "c": {c, idC}} {
		term := pair.srv.Attach(t, pair.id)
		term.Send("echo " + name + "-still-$((6*7))\n")
		term.WaitOutput(name + "-still-42")
		term.Conn.Close()
	}
}
