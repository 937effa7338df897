package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestClusterNodesRm: on a cluster of nodes a and b, 'nodes rm' refuses
// b while it runs, a (the node answering) and a name no node has, each
// with exit 1 and the server's reason. b is killed: once its lease has
// expired its session is recorded node_lost, and 'nodes rm b' names it;
// destroyed with 'kill', b is removed, a logs so, and 'nodes' lists a
// alone. b started again registers again, and is listed healthy.
func TestClusterNodesRm(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	ao := nodeOptions(dsn, "a")
	ao.LogLevel = "info" // the removal is logged at info
	a := e2etest.Start(t, ao)
	b := startNode(t, dsn, "b")
	events := subscribe(t, a)
	id := b.CreateSession(t, map[string]any{"environment_id": "host-b", "command": []string{"sleep", "3600"}})
	events.await(t, 10*time.Second, "session_created", id, "b")

	refused := func(name, want string) {
		t.Helper()
		code, stdout, stderr := cli(t, a.URL, "nodes", "rm", name)
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, "ptyhost: nodes rm "+name+": ") || !strings.Contains(stderr, want) {
			t.Errorf("nodes rm %s: exit %d\nstdout %q\nstderr %q\nwant exit 1 saying %q", name, code, stdout, stderr, want)
		}
	}
	refused("b", "node b cannot be removed: its lease is live")
	refused("b", "stop the node first, and remove it once its lease has expired; 1 session still recorded as running ("+id+") (HTTP 409)")
	refused("a", "node a cannot be removed: its lease is live") // a node cannot remove itself
	refused("nobody", `node not found: "nobody" (HTTP 404)`)

	b.Kill(t)
	events.await(t, testNodeLease+5*time.Second, "session_error", id, "b")
	refused("b", "node b cannot be removed: 1 session recorded node_lost ("+id+"), which the node takes up again if it comes back")
	refused("b", "end them for good by destroying each (ptyhost kill ID), then remove the node (HTTP 409)")
	if code, stdout, stderr := cli(t, a.URL, "kill", id); code != 0 {
		t.Fatalf("kill %s: exit %d\n%s%s", id, code, stdout, stderr)
	}
	if code, stdout, stderr := cli(t, a.URL, "nodes", "rm", "b"); code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("nodes rm b once its session ended: exit %d\nstdout %q\nstderr %q; want exit 0, nothing printed", code, stdout, stderr)
	}
	if got, want := nodeLines(nodesOf(t, a)), "a http://a.cluster.test:7420 true 0"; got != want {
		t.Errorf("nodes after b's removal: %s, want %s", got, want)
	}
	if log := a.Stderr(); strings.Count(log, "node removed from the cluster's registry") != 1 || !strings.Contains(log, "node=b") {
		t.Errorf("a's log does not say once that it removed b:\n%s", log)
	}
	if rec := a.Session(t, id); rec["status"] != "TERMINATED" || rec["node"] != "b" {
		t.Errorf("b's session after b's removal: %v; want its record kept, TERMINATED, on b", rec)
	}
	refused("b", `node not found: "b" (HTTP 404)`)

	// b comes back: it registers again.
	b2 := b.Restart(t)
	want := "a http://a.cluster.test:7420 true 0; b http://b.cluster.test:7420 true 0"
	e2etest.Eventually(t, 10*time.Second, "b listed again, healthy", func() bool {
		return nodeLines(nodesOf(t, a)) == want
	}, func() string { return nodeLines(nodesOf(t, a)) })
	for _, srv := range []*e2etest.Server{a, b2} {
		if log := srv.Stderr(); strings.Contains(log, testClusterSecret) {
			t.Errorf("the cluster secret is in a server's log:\n%s", log)
		}
	}
}
