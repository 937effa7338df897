package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// saveSessions records sessions of node with the given statuses, ids
// node-0, node-1, ….
func saveSessions(t *testing.T, s *gormstore.DB, node string, statuses ...core.Status) {
	t.Helper()
	for i, st := range statuses {
		rec := core.SessionRecord{ID: fmt.Sprintf("%s-%d", node, i), EnvironmentID: "host", Node: node, Status: st}
		if err := s.SaveSession(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
}

// statusOf returns session id's status and reason as one string.
func statusOf(t *testing.T, s *gormstore.DB, id string) string {
	t.Helper()
	rec, err := s.GetSession(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.StatusReason == "" {
		return string(rec.Status)
	}
	return string(rec.Status) + " " + rec.StatusReason
}

// expire ends node's lease now, as a crash that outlived it would.
func expire(t *testing.T, s *gormstore.DB, node string) {
	t.Helper()
	if err := s.Gorm().Exec("UPDATE nodes SET lease_expires_at = now() WHERE name = ?", node).Error; err != nil {
		t.Fatal(err)
	}
}

// TestMarkLostNodes: once a node's lease has expired, the live sessions of
// that node, and no other, are recorded ERROR node_lost and their
// session_error events reach every node's relay; a second sweep marks
// nothing. A live node's renewals do the sweep by themselves.
func TestMarkLostNodes(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b := openReal(t, dsn), openReal(t, dsn)
	ctx := context.Background()
	// a renews every 100 ms, and sweeps after each renewal.
	mustRegister(t, a, gormstore.NodeOptions{Name: "a", URL: "http://a:7420", LeaseTTL: 5 * time.Second, Renewal: 100 * time.Millisecond})
	// b is registered, and crashes (its lease is expired below).
	mustRegister(t, b, gormstore.NodeOptions{Name: "b", URL: "http://b:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	saveSessions(t, a, "a", core.StatusActive)
	saveSessions(t, a, "b", core.StatusActive, core.StatusIdle, core.StatusStarting, core.StatusTerminated)
	_, gotA := runRelay(t, a, "a")
	rb, gotB := runRelay(t, b, "b")
	awaitListening(t, rb, "b", gotA)

	// b's lease is live: nothing is marked.
	if marked, err := b.MarkLostNodes(ctx); err != nil || len(marked) != 0 {
		t.Fatalf("MarkLostNodes with every lease live: %v, %v; want nothing", marked, err)
	}
	expire(t, a, "b")
	// a's renewals sweep: within a few renewals b's sessions are lost.
	waitFor(t, 5*time.Second, "b's sessions to be recorded node_lost", func() bool {
		return statusOf(t, a, "b-0") != "ACTIVE"
	})
	want := map[string]string{
		"a-0": "ACTIVE",
		"b-0": "ERROR " + core.ReasonNodeLost,
		"b-1": "ERROR " + core.ReasonNodeLost,
		"b-2": "ERROR " + core.ReasonNodeLost,
		"b-3": "TERMINATED",
	}
	for id, w := range want {
		if got := statusOf(t, a, id); got != w {
			t.Errorf("session %s: %s, want %s", id, got, w)
		}
	}
	// Every relay, the sweeping node's too, delivers the events once.
	for _, got := range []*received{gotA, gotB} {
		got.await(t, "session_error b-0 b", "session_error b-1 b", "session_error b-2 b")
		if e := got.event(0); e.Err == nil || e.Err.Error() != core.ReasonNodeLost {
			t.Errorf("the event's error: %v, want %s", e.Err, core.ReasonNodeLost)
		}
	}
	if marked, err := b.MarkLostNodes(ctx); err != nil || len(marked) != 0 {
		t.Errorf("a second sweep: %v, %v; want nothing", marked, err)
	}
	if nodes := listed(t, a); nodes != "a http://a:7420 true 1 ; b http://b:7420 false 0 " {
		t.Errorf("nodes: %q", nodes)
	}
}

// TestReclaimSession: a node that registers again takes its node_lost
// sessions back while it holds the lease; another node, a process that
// did not register under the name, or a session lost otherwise cannot.
func TestReclaimSession(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b := openReal(t, dsn), openReal(t, dsn)
	ctx := context.Background()
	mustRegister(t, a, gormstore.NodeOptions{Name: "a", URL: "http://a:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	saveSessions(t, a, "b", core.StatusActive, core.StatusError)
	// b-1 ended on its own.
	// (SQL: a node's UpdateSession writes only its own sessions.)
	if err := a.Gorm().Exec("UPDATE sessions SET status_reason = ? WHERE id = ?", "spawn failed", "b-1").Error; err != nil {
		t.Fatal(err)
	}
	if err := a.Gorm().Exec(`INSERT INTO nodes (name, url, version, instance, started_at, lease_expires_at)
		VALUES ('b', 'http://b:7420', '', 'old', now(), now())`).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := a.MarkLostNodes(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.ReclaimSession(ctx, "b-0", "b"); ok || err != nil {
		t.Errorf("node a reclaiming b's session: %v, %v; want false", ok, err)
	}
	if ok, err := b.ReclaimSession(ctx, "b-0", "b"); ok || err != nil {
		t.Errorf("an unregistered process reclaiming b's session: %v, %v; want false", ok, err)
	}
	mustRegister(t, b, gormstore.NodeOptions{Name: "b", URL: "http://b:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	if ok, err := b.ReclaimSession(ctx, "b-1", "b"); ok || err != nil {
		t.Errorf("reclaiming a session that ended otherwise: %v, %v; want false", ok, err)
	}
	if ok, err := b.ReclaimSession(ctx, "b-0", "b"); !ok || err != nil {
		t.Errorf("b reclaiming its session: %v, %v; want true", ok, err)
	}
	if got := statusOf(t, a, "b-0"); got != "ACTIVE" {
		t.Errorf("b-0 reclaimed: %s, want ACTIVE", got)
	}
	if ok, err := b.ReclaimSession(ctx, "b-0", "b"); ok || err != nil {
		t.Errorf("reclaiming it twice: %v, %v; want false", ok, err)
	}
}

// TestNodeLostRace races, round after round, a sweep by node a with two
// processes starting as node b, whose lease just expired, each reclaiming
// b's sessions as a starting node does: at most one process registers as
// b, only it reclaims, and in the end every session is either still
// node_lost with nobody owning it, or ACTIVE and owned by that one
// process: never both believed owned by b and recorded as lost.
func TestNodeLostRace(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a := openReal(t, dsn)
	ctx := context.Background()
	mustRegister(t, a, gormstore.NodeOptions{Name: "a", URL: "http://a:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	procs := []*gormstore.DB{openReal(t, dsn), openReal(t, dsn)}
	const rounds, sessions = 30, 8
	for round := range rounds {
		ids := make([]string, sessions)
		for i := range ids {
			ids[i] = fmt.Sprintf("r%d-%d", round, i)
			rec := core.SessionRecord{ID: ids[i], EnvironmentID: "host", Node: "b", Status: core.StatusActive}
			if err := a.SaveSession(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
		expire(t, a, "b")

		var (
			wg        sync.WaitGroup
			start     = make(chan struct{})
			leases    = make([]*gormstore.NodeLease, len(procs))
			reclaimed = make([][]string, len(procs))
			errs      = make([]error, len(procs)+1)
			marked    map[string][]string
		)
		wg.Go(func() {
			<-start
			marked, errs[len(procs)] = a.MarkLostNodes(ctx)
		})
		for p, s := range procs {
			wg.Go(func() {
				<-start
				l, err := s.RegisterNode(ctx, gormstore.NodeOptions{Name: "b", URL: "http://b:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
				if errors.Is(err, gormstore.ErrNodeRunning) {
					// The other process is b; this one still tries to
					// reclaim, and must not manage to.
					for _, id := range ids {
						if ok, err := s.ReclaimSession(ctx, id, "b"); ok || err != nil {
							errs[p] = fmt.Errorf("a process refused the name reclaimed %s: %v", id, err)
						}
					}
					return
				}
				if err != nil {
					errs[p] = err
					return
				}
				leases[p] = l
				// As Reconcile: the sessions found node_lost are taken back.
				reclaimed[p], errs[p] = reclaimLost(ctx, s, ids, "b")
			})
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		checkRaceRound(t, ctx, round, a, ids, leases, reclaimed, marked)
		t.Logf("round %d: the sweep marked %d sessions before b came back", round, len(marked["b"]))
	}
}

// TestNodeLeaseLostWhenExpired: a node whose lease expired before a
// renewal, as after a stall or a partition, takes its lease as lost
// rather than renewing it: the other nodes may have recorded its sessions
// as node_lost already.
func TestNodeLeaseLostWhenExpired(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a := openReal(t, dsn)
	l := mustRegister(t, a, gormstore.NodeOptions{Name: "a", URL: "http://a:7420", LeaseTTL: time.Hour, Renewal: 50 * time.Millisecond})
	expire(t, a, "a")
	select {
	case <-l.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the renewal renewed an expired lease")
	}
	if got := listed(t, a); got != "a http://a:7420 false 0 " {
		t.Errorf("nodes: %q, want a unhealthy", got)
	}
}

// TestSessionOwnershipFence: on the nodes of a cluster, of two creates of
// one id racing, exactly one records it; a node cannot replace or update
// another node's live session; and the node a session belongs to cannot
// write over the node_lost mark another node made (ReclaimSession takes
// it back, nothing else). A node_lost session's id is not taken by a
// create; an ended session's may be used again.
func TestSessionOwnershipFence(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b := openReal(t, dsn), openReal(t, dsn)
	ctx := context.Background()
	mustRegister(t, a, gormstore.NodeOptions{Name: "a", URL: "http://a:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	mustRegister(t, b, gormstore.NodeOptions{Name: "b", URL: "http://b:7420", LeaseTTL: time.Hour, Renewal: time.Hour})

	for round := range 20 {
		id := fmt.Sprintf("race-%d", round)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []*gormstore.DB{a, b} {
			wg.Go(func() {
				errs[i] = s.SaveSession(ctx, core.SessionRecord{ID: id, EnvironmentID: "host", Node: []string{"a", "b"}[i], Status: core.StatusStarting})
			})
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, core.ErrAlreadyExists):
				t.Fatalf("round %d: %v, want nil or ErrAlreadyExists", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of two racing creates recorded the id, want 1 (%v)", round, won, errs)
		}
	}

	saveSessions(t, a, "a", core.StatusActive) // a-0
	active := core.StatusIdle
	if err := b.UpdateSession(ctx, "a-0", core.SessionUpdate{Status: &active}); !errors.Is(err, core.ErrSessionNotFound) {
		t.Errorf("b updating a's session: %v, want not found", err)
	}
	if err := b.SaveSession(ctx, core.SessionRecord{ID: "a-0", EnvironmentID: "host", Node: "b", Status: core.StatusStarting}); !errors.Is(err, core.ErrAlreadyExists) {
		t.Errorf("b replacing a's live session: %v, want ErrAlreadyExists", err)
	}
	// a's lease expires, b marks a-0 lost: a's late write is fenced.
	expire(t, a, "a")
	if _, err := b.MarkLostNodes(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.UpdateSession(ctx, "a-0", core.SessionUpdate{Status: &active}); !errors.Is(err, gormstore.ErrLeaseLost) {
		t.Errorf("a's late write over the node_lost mark: %v, want its lease lost", err)
	}
	if got := statusOf(t, b, "a-0"); got != "ERROR "+core.ReasonNodeLost {
		t.Errorf("a-0 after a's late write: %s, want the node_lost mark", got)
	}
	// Lost is not ended for good: a may come back with it, so b does not
	// take the id (a create would silently cost the session a keeps)...
	err := b.SaveSession(ctx, core.SessionRecord{ID: "a-0", EnvironmentID: "host", Node: "b", Status: core.StatusStarting})
	if !errors.Is(err, core.ErrAlreadyExists) || !strings.Contains(err.Error(), "node_lost") {
		t.Errorf("b creating over a's node_lost session: %v, want ErrAlreadyExists saying it is node_lost", err)
	}
	// ...until a DELETE ends it: then its id may be created again, on b.
	if ended, err := b.EndNodeLost(ctx, "a-0", "destroyed: test"); !ended || err != nil {
		t.Fatalf("EndNodeLost: %v, %v", ended, err)
	}
	if err := b.SaveSession(ctx, core.SessionRecord{ID: "a-0", EnvironmentID: "host", Node: "b", Status: core.StatusStarting}); err != nil {
		t.Errorf("b creating over a's ended session: %v", err)
	}
}

// TestEndNodeLost: a node_lost session, whichever node it belongs to, is
// recorded TERMINATED with the reason given, once; a session not
// node_lost is left alone; and a session ended so is no longer reclaimed
// by its node coming back. Raced with that node's reclaim, round after
// round, exactly one of the two changes the row.
func TestEndNodeLost(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b := openReal(t, dsn), openReal(t, dsn)
	ctx := context.Background()
	mustRegister(t, a, gormstore.NodeOptions{Name: "a", URL: "http://a:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	// b is registered, and crashes (its lease is expired below).
	mustRegister(t, b, gormstore.NodeOptions{Name: "b", URL: "http://b:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	saveSessions(t, a, "b", core.StatusActive, core.StatusActive, core.StatusTerminated, core.StatusError)
	expire(t, a, "b")
	if _, err := a.MarkLostNodes(ctx); err != nil {
		t.Fatal(err)
	}
	const reason = "destroyed: test"
	for _, c := range []struct {
		id   string
		want bool
	}{{"b-0", true}, {"b-0", false}, {"b-2", false}, {"b-3", false}, {"none", false}} {
		if got, err := a.EndNodeLost(ctx, c.id, reason); err != nil || got != c.want {
			t.Errorf("EndNodeLost(%s) = %v, %v; want %v", c.id, got, err, c.want)
		}
	}
	for id, want := range map[string]string{
		"b-0": "TERMINATED " + reason,
		"b-1": "ERROR " + core.ReasonNodeLost,
		"b-2": "TERMINATED",
		"b-3": "ERROR",
	} {
		if got := statusOf(t, a, id); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	// b comes back: it reclaims b-1, not the ended b-0.
	mustRegister(t, b, gormstore.NodeOptions{Name: "b", URL: "http://b:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	for id, want := range map[string]bool{"b-0": false, "b-1": true} {
		if got, err := b.ReclaimSession(ctx, id, "b"); err != nil || got != want {
			t.Errorf("ReclaimSession(%s) = %v, %v; want %v", id, got, err, want)
		}
	}

	for round := range 20 {
		id := fmt.Sprintf("race-%d", round)
		rec := core.SessionRecord{ID: id, EnvironmentID: "host", Node: "b", Status: core.StatusError, StatusReason: core.ReasonNodeLost}
		if err := a.SaveSession(ctx, rec); err != nil {
			t.Fatal(err)
		}
		var ended, reclaimed bool
		var errEnd, errReclaim error
		var wg sync.WaitGroup
		wg.Go(func() { ended, errEnd = a.EndNodeLost(ctx, id, reason) })
		wg.Go(func() { reclaimed, errReclaim = b.ReclaimSession(ctx, id, "b") })
		wg.Wait()
		if errEnd != nil || errReclaim != nil || ended == reclaimed {
			t.Fatalf("round %d: ended %v (%v), reclaimed %v (%v); want exactly one", round, ended, errEnd, reclaimed, errReclaim)
		}
		want := "ACTIVE"
		if ended {
			want = "TERMINATED " + reason
		}
		if got := statusOf(t, a, id); got != want {
			t.Fatalf("round %d: %s, want %s", round, got, want)
		}
	}
}

// TestSweepSkipsHeldRows: a lost node's session row held by a transaction
// left open (its process stalled, or was cut off, between a statement and
// its COMMIT) holds up neither the sweep nor another lost node's
// sessions, and is marked node_lost by a later sweep once PostgreSQL has
// ended that transaction (the store's idle-in-transaction timeout).
func TestSweepSkipsHeldRows(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b, c := openReal(t, dsn), openReal(t, dsn), openReal(t, dsn)
	ctx := context.Background()
	for name, s := range map[string]*gormstore.DB{"a": a, "b": b, "c": c} {
		mustRegister(t, s, gormstore.NodeOptions{Name: name, URL: "http://" + name + ":7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	}
	saveSessions(t, b, "b", core.StatusActive) // b-0
	saveSessions(t, c, "c", core.StatusActive) // c-0
	// What b's connection holds when b stops between an UPDATE and its
	// COMMIT.
	held := b.Gorm().Begin()
	if err := held.Exec("UPDATE sessions SET active_connections = 1 WHERE id = 'b-0'").Error; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Rollback() })
	expire(t, a, "b")
	expire(t, a, "c")

	// sweep is a's sweep within a renewal period, as NodeLease's.
	sweep := func() map[string][]string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		marked, err := a.MarkLostNodes(sctx)
		if err != nil {
			t.Fatalf("a sweep while b-0 is held: %v", err)
		}
		return marked
	}
	if got, want := sweep(), map[string][]string{"c": {"c-0"}}; !maps.EqualFunc(got, want, slices.Equal) {
		t.Errorf("the sweep while b-0 is held marked %v, want %v", got, want)
	}
	if got := statusOf(t, a, "b-0"); got != "ACTIVE" {
		t.Errorf("b-0 while held: %s, want ACTIVE", got)
	}
	waitFor(t, 30*time.Second, "b-0 recorded node_lost once the database ends the held transaction", func() bool {
		sweep()
		return statusOf(t, a, "b-0") == "ERROR "+core.ReasonNodeLost
	})
	if err := held.Commit().Error; err == nil {
		t.Error("the held transaction committed; want it ended by the database")
	}
}

// TestLateWriteOfLostNode: a node writes its sessions' rows only while it
// holds its lease. A released lease still runs while the node has live
// sessions (a stop that left them running), so the stop's last writes
// land. Once the lease expired, a late write (one queued before the node
// knew) is not found, before the sweep and after it, and does not revive
// a session another node destroyed since (EndNodeLost).
func TestLateWriteOfLostNode(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b := openReal(t, dsn), openReal(t, dsn)
	ctx := context.Background()
	la := mustRegister(t, a, gormstore.NodeOptions{Name: "a", URL: "http://a:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	mustRegister(t, b, gormstore.NodeOptions{Name: "b", URL: "http://b:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	saveSessions(t, a, "a", core.StatusActive, core.StatusActive, core.StatusActive) // a-0, a-1, a-2
	idle := core.StatusIdle
	update := func(id string) error { return a.UpdateSession(ctx, id, core.SessionUpdate{Status: &idle}) }

	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := update("a-2"); err != nil {
		t.Errorf("a's write after its release, its lease running: %v", err)
	}
	if got := statusOf(t, b, "a-2"); got != "IDLE" {
		t.Errorf("a-2 after a's write: %s, want IDLE", got)
	}

	expire(t, a, "a")
	// Refused, and not as a missing row, which the core's writer would
	// drop, and with it a session's end it must keep.
	if err := update("a-1"); !errors.Is(err, gormstore.ErrLeaseLost) || errors.Is(err, core.ErrSessionNotFound) {
		t.Errorf("a's write once its lease expired: %v, want the lease lost", err)
	}
	if got := statusOf(t, b, "a-1"); got != "ACTIVE" {
		t.Errorf("a-1 after a's late write: %s, want ACTIVE", got)
	}

	if _, err := b.MarkLostNodes(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.EndNodeLost(ctx, "a-0", core.ReasonDestroyedNodeLost); err != nil || !ok {
		t.Fatalf("EndNodeLost(a-0) = %v, %v; want true", ok, err)
	}
	if err := update("a-0"); !errors.Is(err, gormstore.ErrLeaseLost) {
		t.Errorf("a's late write over the destroyed record: %v, want the lease lost", err)
	}
	if err := b.UpdateSession(ctx, "a-0", core.SessionUpdate{Status: &idle}); !errors.Is(err, core.ErrSessionNotFound) {
		t.Errorf("b's write of a's row: %v, want not found (b's lease is live)", err)
	}
	if got := statusOf(t, b, "a-0"); got != "TERMINATED "+core.ReasonDestroyedNodeLost {
		t.Errorf("a-0 after a's late write: %s, want it destroyed still", got)
	}
}

// A node whose lease has expired in the database while its process still
// runs (a stall longer than the lease, not yet noticed by its renewal)
// keeps a session's end that its write could not store: the plugin is not
// told to forget the session, so the end is not lost; once the lease is
// live again (the renewal caught up) the write lands, and only then is the
// plugin told.
func TestExitWrittenOnlyUnderALiveLease(t *testing.T) {
	db := openReal(t, postgresFreshDSN(t))
	ctx := context.Background()
	mustRegister(t, db, gormstore.NodeOptions{Name: "a", URL: "http://a:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	if err := db.CreateEnvironment(ctx, core.Environment{ID: "fake", Name: "fake", Type: "FAKE"}); err != nil {
		t.Fatal(err)
	}
	env := &fakeenv.Env{}
	m, err := core.New(core.Options{Store: db, Plugins: core.StaticEnvironments{"FAKE": env}, NodeName: "a", IdleTimeout: core.NoIdleTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	if _, err := m.CreateSession(ctx, core.CreateOptions{ID: "s", EnvironmentID: "fake"}); err != nil {
		t.Fatal(err)
	}
	p := env.Last(t)
	waitFor(t, 10*time.Second, "the session recorded started", func() bool {
		rec, err := db.GetSession(ctx, "s")
		return err == nil && rec.Status != core.StatusStarting
	})
	expire(t, db, "a")
	p.End(shared.ExitStatus{Code: 3})
	// The writer tries at once, then again after 100 ms, 200 ms, ...
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, closes := p.Counts(); closes != 0 {
			t.Fatal("the plugin was told to forget the session while its end could not be stored")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := db.Gorm().Exec("UPDATE nodes SET lease_expires_at = now() + interval '1 hour' WHERE name = 'a'").Error; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the end stored, and the plugin told", func() bool {
		rec, err := db.GetSession(ctx, "s")
		_, closes := p.Counts()
		return err == nil && rec.ExitCode != nil && *rec.ExitCode == 3 && closes == 1
	})
}

// reclaimLost takes back for node, as Reconcile does, those of the
// sessions ids recorded node_lost (ERROR), and returns their ids.
func reclaimLost(ctx context.Context, s *gormstore.DB, ids []string, node string) ([]string, error) {
	var reclaimed []string
	for _, id := range ids {
		rec, err := s.GetSession(ctx, id)
		if err != nil {
			return reclaimed, err
		}
		if rec.Status != core.StatusError {
			continue
		}
		ok, err := s.ReclaimSession(ctx, id, node)
		if err != nil || !ok {
			return reclaimed, fmt.Errorf("reclaiming %s, found %s: %v, %v", id, rec.Status, ok, err)
		}
		reclaimed = append(reclaimed, id)
	}
	return reclaimed, nil
}

// checkRaceRound checks a round of a race between a sweep of a (which
// marked marked) and processes registering as b: exactly one holds the
// name (leases), it reclaimed exactly what the sweep marked and no other
// reclaimed anything, every session of ids is ACTIVE, and a sweep now
// marks nothing. Then b's sessions end and its lease is released, for the
// next round. (SQL: a node's UpdateSession writes only its own sessions.)
func checkRaceRound(t *testing.T, ctx context.Context, round int, a *gormstore.DB, ids []string,
	leases []*gormstore.NodeLease, reclaimed [][]string, marked map[string][]string) {
	t.Helper()
	owners := 0
	for p, l := range leases {
		if l == nil {
			if len(reclaimed[p]) > 0 {
				t.Fatalf("round %d: process %d reclaimed %v without the name", round, p, reclaimed[p])
			}
			continue
		}
		owners++
		got, want := slices.Sorted(slices.Values(reclaimed[p])), slices.Sorted(slices.Values(marked["b"]))
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: reclaimed %v, the sweep marked %v", round, got, want)
		}
	}
	if owners != 1 {
		t.Fatalf("round %d: %d processes registered as b, want 1", round, owners)
	}
	for _, id := range ids {
		if got := statusOf(t, a, id); got != "ACTIVE" {
			t.Fatalf("round %d: session %s is %s, owned by a live b", round, id, got)
		}
	}
	if again, err := a.MarkLostNodes(ctx); err != nil || len(again) != 0 {
		t.Fatalf("round %d: a sweep with b live: %v, %v", round, again, err)
	}
	if err := a.Gorm().Exec("UPDATE sessions SET status = ? WHERE id IN ?", string(core.StatusTerminated), ids).Error; err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l != nil {
			if err := l.Release(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}
