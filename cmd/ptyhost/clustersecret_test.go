package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// otherClusterSecret is the cluster secret of a node configured apart.
const otherClusterSecret = "another-cluster-secret-0123456789"

// nodeSecrets is srv's node list as "name:cluster_secret", one per node.
func nodeSecrets(t *testing.T, srv *e2etest.Server) string {
	t.Helper()
	var parts []string
	for _, n := range nodesOf(t, srv) {
		parts = append(parts, n.Name+":"+n.ClusterSecret)
	}
	return strings.Join(parts, " ")
}

// TestNodeOfAnotherClusterSecret: node c starts with a cluster secret
// other than a's. Both list the other's secret as differing (nodes --json,
// and the table's SECRET column with a warning); c logs an error at its
// start naming a, and a logs one naming c, once, not at every renewal or
// request. A create in an environment any node serves, placed on a,
// stays on a though c is idler; a request through a for c's session is
// refused on a with a 502 naming c and the mismatch, and never reaches c.
// A node whose row has no fingerprint (as a ptyhost from before them
// registers) lists as unknown, not as differing.
func TestNodeOfAnotherClusterSecret(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	ctx := context.Background()
	db, err := gormstore.Open(ctx, dsn, gormstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	// A HOST environment without a node, as a single server made it
	// before the cluster: every node serves it, each on its own machine.
	if err := db.CreateEnvironment(ctx, core.Environment{ID: "anywhere", Name: "Any node's machine", Type: "HOST"}); err != nil {
		t.Fatal(err)
	}

	a := startReachableNode(t, dsn, "a")
	co := reachableNodeOptions(t, dsn, "c")
	co.Env = []string{"PTYHOST_CLUSTER_SECRET=" + otherClusterSecret}
	c := e2etest.Start(t, co)

	if got, want := nodeSecrets(t, a), "a:same c:differs"; got != want {
		t.Errorf("nodes on a: %s, want %s", got, want)
	}
	if got, want := nodeSecrets(t, c), "a:differs c:same"; got != want {
		t.Errorf("nodes on c: %s, want %s", got, want)
	}
	code, out, stderr := cli(t, a.URL, "nodes")
	table := regexp.MustCompile(`(?m)^NAME +URL +HEALTHY +SESSIONS +VERSION +SECRET\na +\S+ +yes +0 +\S+ +same\nc +\S+ +yes +0 +\S+ +differs\n$`)
	if code != 0 || !table.MatchString(out) || !strings.Contains(stderr, "the cluster secret of node c differs from that of the node that answered") {
		t.Errorf("nodes on a: exit %d\n%s%s", code, out, stderr)
	}

	// a runs one session, c none: placement would pick c, but c would
	// refuse a's secret.
	createOn(t, a, "a", "sleep", "3600")
	for range 2 {
		id := a.CreateSession(t, map[string]any{"environment_id": "anywhere", "command": []string{"sleep", "3600"}})
		if rec := a.Session(t, id); rec["node"] != "a" {
			t.Errorf("a session in anywhere created through a: %v, want it on a, not on c", rec)
		}
	}
	onC := createOn(t, c, "c", "sleep", "3600")
	for _, method := range []string{"DELETE", "GET"} {
		path := "/api/v1/sessions/" + onC
		if method == "GET" {
			path += "/attach"
		}
		code, msg := request(t, a, method, path)
		if code != 502 || !strings.Contains(msg, "node c, which runs this session, has a cluster secret other than node a's") {
			t.Errorf("%s %s through a: %d %q, want 502 naming c and the mismatch", method, path, code, msg)
		}
	}
	if rec := c.Session(t, onC); rec["status"] != "ACTIVE" {
		t.Errorf("c's session after a DELETE through a: %v, want it running", rec)
	}

	// Ten renewals later (every 400 ms), each node has said it once.
	time.Sleep(2 * testNodeLease)
	for _, tc := range []struct {
		srv   *e2etest.Server
		msg   string
		other string
	}{
		{a, "a node runs with a cluster secret other than this node's", "c"},
		{c, "this node starts with a cluster secret other than that of a running node", "a"},
	} {
		log := tc.srv.Stderr()
		var about []string
		for line := range strings.Lines(log) {
			if strings.Contains(line, "other_node="+tc.other+" ") {
				about = append(about, line)
			}
		}
		if len(about) != 1 || !strings.Contains(about[0], "level=ERROR") || !strings.Contains(about[0], tc.msg) {
			t.Errorf("logged about node %s: %q; want one error %q", tc.other, about, tc.msg)
		}
		if strings.Contains(log, testClusterSecret) || strings.Contains(log, otherClusterSecret) {
			t.Errorf("a node's log shows a cluster secret:\n%s", log)
		}
	}
	if log := c.Stderr(); strings.Contains(log, "wrong cluster secret") {
		t.Errorf("c received a request from a:\n%s", log)
	}

	// c's row as a ptyhost from before the fingerprints writes it: c's
	// secret is unknown, not different.
	if err := db.Gorm().Exec(`UPDATE nodes SET secret_fingerprint = '' WHERE name = 'c'`).Error; err != nil {
		t.Fatal(err)
	}
	if got, want := nodeSecrets(t, a), "a:same c:unknown"; got != want {
		t.Errorf("nodes on a, c without a fingerprint: %s, want %s", got, want)
	}
}
