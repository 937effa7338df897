package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
)

// openReal opens dsn with the real clock, as a server does, and closes it
// when the test ends.
func openReal(t *testing.T, dsn string) *gormstore.DB {
	t.Helper()
	return openWith(t, dsn, gormstore.Options{})
}

// openWith opens dsn with o and closes it when the test ends.
func openWith(t *testing.T, dsn string, o gormstore.Options) *gormstore.DB {
	t.Helper()
	s, err := gormstore.Open(context.Background(), dsn, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// mustRegister registers o in s, ready as a node is once it has taken
// its sessions up, and releases the lease when the test ends.
func mustRegister(t *testing.T, s *gormstore.DB, o gormstore.NodeOptions) *gormstore.NodeLease {
	t.Helper()
	l := mustRegisterUnready(t, s, o)
	if err := l.Ready(context.Background()); err != nil {
		t.Fatalf("Ready(%s): %v", o.Name, err)
	}
	return l
}

// mustRegisterUnready is mustRegister without Ready.
func mustRegisterUnready(t *testing.T, s *gormstore.DB, o gormstore.NodeOptions) *gormstore.NodeLease {
	t.Helper()
	l, err := s.RegisterNode(context.Background(), o)
	if err != nil {
		t.Fatalf("RegisterNode(%s): %v", o.Name, err)
	}
	t.Cleanup(func() {
		if err := l.Release(context.Background()); err != nil {
			t.Errorf("Release: %v", err)
		}
	})
	return l
}

// listed returns s's nodes as one line each: name url healthy sessions
// version.
func listed(t *testing.T, s *gormstore.DB) string {
	t.Helper()
	nodes, err := s.ListNodes(context.Background())
	if err != nil {
		t.Fatalf("ListNodes: %v", err)
	}
	var lines []string
	for _, n := range nodes {
		lines = append(lines, fmt.Sprintf("%s %s %v %d %s", n.Name, n.URL, n.Healthy, n.Sessions, n.Version))
	}
	return strings.Join(lines, "; ")
}

// waitFor polls cond every 20 ms until it holds, failing the test after
// within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond) // a database to poll
	}
}

// TestNodes: nodes register with leases on one PostgreSQL database, list
// one another with their running sessions, and a name is held by one live
// process at a time.
func TestNodes(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b := openReal(t, dsn), openReal(t, dsn)
	ctx := context.Background()
	mustRegister(t, b, gormstore.NodeOptions{Name: "b", URL: "http://b:7420", Version: "v2"})
	la := mustRegister(t, a, gormstore.NodeOptions{Name: "a", URL: "http://a:7420", Version: "v1"})

	for i, st := range []core.Status{core.StatusActive, core.StatusIdle, core.StatusStarting, core.StatusTerminated, core.StatusError} {
		rec := core.SessionRecord{ID: fmt.Sprintf("a%d", i), EnvironmentID: "host", Node: "a", Status: st}
		if err := a.SaveSession(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SaveSession(ctx, core.SessionRecord{ID: "single", EnvironmentID: "host", Status: core.StatusActive}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.GetSession(ctx, "a0"); err != nil || got.Node != "a" {
		t.Errorf("GetSession(a0): node %q, %v; want a", got.Node, err)
	}
	want := "a http://a:7420 true 3 v1; b http://b:7420 true 0 v2"
	if got := listed(t, b); got != want {
		t.Errorf("nodes: %s\nwant %s", got, want)
	}

	// A second process of the name is refused while the first one's lease
	// runs, naming where it runs; the same instance takes its row back.
	_, err := b.RegisterNode(ctx, gormstore.NodeOptions{Name: "a", URL: "http://elsewhere:7420"})
	if !errors.Is(err, gormstore.ErrNodeRunning) || !strings.Contains(err.Error(), "node a is already running at http://a:7420") {
		t.Errorf("a second node a: %v; want ErrNodeRunning naming http://a:7420", err)
	}
	again := mustRegister(t, a, gormstore.NodeOptions{Name: "a", URL: "http://a:7421", Version: "v1", Instance: la.Instance()})
	if again.Instance() != la.Instance() {
		t.Errorf("instance %q, want %q", again.Instance(), la.Instance())
	}

	// Released: unhealthy at once, and the name is free.
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := listed(t, b), "a http://a:7421 false 3 v1; b http://b:7420 true 0 v2"; got != want {
		t.Errorf("after the release: %s\nwant %s", got, want)
	}
	mustRegister(t, b, gormstore.NodeOptions{Name: "a", URL: "http://a2:7420", Version: "v3"})
	if got, want := listed(t, a), "a http://a2:7420 true 3 v3; b http://b:7420 true 0 v2"; got != want {
		t.Errorf("after a new a: %s\nwant %s", got, want)
	}
}

// TestNodeLeaseExpires: a node that stops renewing lists as unhealthy once
// its lease expires; then another process takes its name over, and the
// first one's next renewal finds the name lost.
func TestNodeLeaseExpires(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b := openReal(t, dsn), openReal(t, dsn)
	// Renewed less often than it expires: a node that misses its
	// renewals, as one stalled or cut off from the database does.
	stalled := mustRegister(t, a, gormstore.NodeOptions{Name: "a", URL: "http://a:7420", LeaseTTL: 300 * time.Millisecond, Renewal: time.Second})
	if got := listed(t, b); got != "a http://a:7420 true 0 " {
		t.Fatalf("nodes: %q, want a healthy", got)
	}
	waitFor(t, 5*time.Second, "node a to turn unhealthy", func() bool { return listed(t, b) == "a http://a:7420 false 0 " })
	mustRegister(t, b, gormstore.NodeOptions{Name: "a", URL: "http://a-new:7420"})
	select {
	case <-stalled.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled node's renewal did not find its name lost")
	}
	if got := listed(t, b); got != "a http://a-new:7420 true 0 " {
		t.Errorf("nodes: %q, want the new a healthy", got)
	}
}

// TestNodesAndClaimExclude: a single server's claim and a cluster's nodes
// do not share a database: each would take the other's sessions up.
func TestNodesAndClaimExclude(t *testing.T) {
	t.Run("claimed", func(t *testing.T) {
		dsn := postgresFreshDSN(t)
		single, node := openReal(t, dsn), openReal(t, dsn)
		mustClaim(t, single, gormstore.Owner{DataDir: "/srv/single"})
		_, err := node.RegisterNode(context.Background(), gormstore.NodeOptions{Name: "a", URL: "http://a:7420"})
		if !errors.Is(err, gormstore.ErrOwned) || !strings.Contains(err.Error(), "/srv/single") {
			t.Errorf("RegisterNode on a claimed database: %v; want ErrOwned naming the single server", err)
		}
	})
	t.Run("nodes", func(t *testing.T) {
		dsn := postgresFreshDSN(t)
		single, node := openReal(t, dsn), openReal(t, dsn)
		mustRegister(t, node, gormstore.NodeOptions{Name: "a", URL: "http://a:7420"})
		_, err := single.Claim(context.Background(), gormstore.Owner{DataDir: "/srv/single"})
		if !errors.Is(err, gormstore.ErrOwned) || !strings.Contains(err.Error(), "node a runs at http://a:7420") {
			t.Errorf("Claim of a cluster's database: %v; want ErrOwned naming node a", err)
		}
	})
}

// TestNodesNeedPostgres: SQLite keeps no nodes.
func TestNodesNeedPostgres(t *testing.T) {
	s := openReal(t, sqliteDSN(t))
	if _, err := s.RegisterNode(context.Background(), gormstore.NodeOptions{Name: "a", URL: "http://a:7420"}); !errors.Is(err, gormstore.ErrNodesUnsupported) {
		t.Errorf("RegisterNode on SQLite: %v, want ErrNodesUnsupported", err)
	}
	if _, err := s.ListNodes(context.Background()); !errors.Is(err, gormstore.ErrNodesUnsupported) {
		t.Errorf("ListNodes on SQLite: %v, want ErrNodesUnsupported", err)
	}
	if err := s.RemoveNode(context.Background(), "a"); !errors.Is(err, gormstore.ErrNodesUnsupported) {
		t.Errorf("RemoveNode on SQLite: %v, want ErrNodesUnsupported", err)
	}
}

// TestReleaseKeepingSessions: a node released with sessions recorded live
// (a stop that left them running in their plugins) lists as unhealthy and
// frees its name at once, but its sessions are recorded node_lost only
// once its lease has run out, not at its release: a process of the name
// that registers before takes them up as they are. A node released with
// none (a stop that hung them up) has its lease expired at once.
func TestReleaseKeepingSessions(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b := openReal(t, dsn), openReal(t, dsn)
	ctx := context.Background()
	mustRegister(t, a, gormstore.NodeOptions{Name: "a", URL: "http://a:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	lb := mustRegister(t, b, gormstore.NodeOptions{Name: "b", URL: "http://b:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	lc := mustRegister(t, b, gormstore.NodeOptions{Name: "c", URL: "http://c:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	saveSessions(t, a, "b", core.StatusActive, core.StatusIdle)
	saveSessions(t, a, "c", core.StatusTerminated)
	leaseExpired := func(node string) bool {
		t.Helper()
		var expired bool
		if err := a.Gorm().Raw("SELECT lease_expires_at <= now() FROM nodes WHERE name = ?", node).Scan(&expired).Error; err != nil {
			t.Fatal(err)
		}
		return expired
	}

	for _, l := range []*gormstore.NodeLease{lb, lc} {
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := listed(t, a), "a http://a:7420 true 0 ; b http://b:7420 false 2 ; c http://c:7420 false 0 "; got != want {
		t.Errorf("after the releases: %s\nwant %s", got, want)
	}
	if leaseExpired("b") || !leaseExpired("c") {
		t.Errorf("lease expired: b %v, c %v; want b's running out, c's expired at once", leaseExpired("b"), leaseExpired("c"))
	}
	if marked, err := a.MarkLostNodes(ctx); err != nil || len(marked) != 0 {
		t.Errorf("a sweep right after b's release marked %v, %v; want nothing while its lease runs", marked, err)
	}

	// b restarts within its lease: the name is free, its sessions live.
	lb2 := mustRegister(t, b, gormstore.NodeOptions{Name: "b", URL: "http://b:7421", LeaseTTL: time.Hour, Renewal: time.Hour})
	for _, id := range []string{"b-0", "b-1"} {
		if got := statusOf(t, a, id); got == "ERROR "+core.ReasonNodeLost {
			t.Errorf("%s after b restarted within its lease: %s", id, got)
		}
	}
	// Stopped again, and not back within the lease: then it is lost.
	if err := lb2.Release(ctx); err != nil {
		t.Fatal(err)
	}
	expire(t, a, "b")
	if marked, err := a.MarkLostNodes(ctx); err != nil || len(marked["b"]) != 2 {
		t.Errorf("a sweep once b's lease ran out marked %v, %v; want b's two sessions", marked, err)
	}
}

// TestNodeReady: a node registered lists as unhealthy until it is ready
// (it has taken up the sessions it kept), so that the other nodes do not
// take its node_lost sessions for final meanwhile; renewals keep it
// ready, and a new process of the name starts unready again.
func TestNodeReady(t *testing.T) {
	s := openReal(t, postgresFreshDSN(t))
	o := gormstore.NodeOptions{Name: "a", URL: "http://a:7420", Version: "v1", LeaseTTL: time.Hour, Renewal: 50 * time.Millisecond}
	l := mustRegisterUnready(t, s, o)
	if got, want := listed(t, s), "a http://a:7420 false 0 v1"; got != want {
		t.Fatalf("registered: %s, want %s (not ready yet)", got, want)
	}
	if err := l.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // renewals
	if got, want := listed(t, s), "a http://a:7420 true 0 v1"; got != want {
		t.Fatalf("ready, after renewals: %s, want %s", got, want)
	}
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	o.Version = "v2"
	mustRegisterUnready(t, s, o)
	if got, want := listed(t, s), "a http://a:7420 false 0 v2"; got != want {
		t.Errorf("registered again: %s, want %s (not ready yet)", got, want)
	}
}
