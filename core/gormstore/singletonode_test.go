package gormstore_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
)

// A single server's sessions when its database comes to serve a cluster
// (PostgreSQL only: nodes need it). Their records name no node.

// saveSingle records the sessions of a single server: ids and statuses,
// no node.
func saveSingle(t *testing.T, s *gormstore.DB, recs map[string]core.Status) {
	t.Helper()
	for id, st := range recs {
		rec := core.SessionRecord{ID: id, EnvironmentID: "host", Status: st}
		if st == core.StatusError {
			rec.StatusReason = core.ReasonSingleServerLost
		}
		if err := s.SaveSession(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMarkLostSingleServer: the live sessions of no node are recorded
// ERROR node_lost (core.ReasonSingleServerLost) by a node's sweep, but
// only once no single server's claim is live; its ended ones and the
// nodes' are left alone, and a DELETE (EndNodeLost) may end them then.
func TestMarkLostSingleServer(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, single := openReal(t, dsn), openReal(t, dsn)
	ctx := context.Background()
	la := mustRegisterUnready(t, a, gormstore.NodeOptions{Name: "a", URL: "http://a:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	saveSessions(t, a, "a", core.StatusActive)
	saveSingle(t, single, map[string]core.Status{
		"s-active": core.StatusActive, "s-idle": core.StatusIdle, "s-starting": core.StatusStarting, "s-ended": core.StatusTerminated,
	})
	// A single server's claim, live (as if made while the node's lease
	// was not: the two exclude each other): its sessions are its own.
	now := time.Now().UTC()
	err := single.Gorm().Exec(`INSERT INTO server_owner (slot, node_id, hostname, pid, instance, data_dir, beats, started_at, heartbeat_at)
		VALUES (1, 'single', 'elsewhere.example', 1, '', '/srv/single', 0, ?, ?)`, now, now).Error
	if err != nil {
		t.Fatal(err)
	}
	if marked, err := a.MarkLostNodes(ctx); err != nil || len(marked) != 0 {
		t.Fatalf("MarkLostNodes while a single server's claim is live: %v, %v; want nothing", marked, err)
	}
	if got := statusOf(t, a, "s-active"); got != "ACTIVE" {
		t.Errorf("s-active while the claim is live: %s, want ACTIVE", got)
	}
	if err := single.Gorm().Exec(`DELETE FROM server_owner`).Error; err != nil {
		t.Fatal(err)
	}
	// Nor before the node has taken its own sessions up: it may be the
	// single server, restarted as a node.
	if marked, err := a.MarkLostNodes(ctx); err != nil || len(marked) != 0 {
		t.Fatalf("MarkLostNodes before the node is ready: %v, %v; want nothing", marked, err)
	}
	if err := la.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	marked, err := a.MarkLostNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := marked[""]
	slices.Sort(got)
	if want := []string{"s-active", "s-idle", "s-starting"}; !slices.Equal(got, want) || len(marked) != 1 {
		t.Errorf("marked %v, want the single server's live sessions %v", marked, want)
	}
	lost := "ERROR " + core.ReasonSingleServerLost
	for id, want := range map[string]string{"s-active": lost, "s-idle": lost, "s-starting": lost, "s-ended": "TERMINATED", "a-0": "ACTIVE"} {
		if got := statusOf(t, a, id); got != want {
			t.Errorf("session %s: %s, want %s", id, got, want)
		}
	}
	if marked, err := a.MarkLostNodes(ctx); err != nil || len(marked) != 0 {
		t.Errorf("a second sweep: %v, %v; want nothing", marked, err)
	}
	if ended, err := a.EndNodeLost(ctx, "s-idle", core.ReasonDestroyedNodeLost); err != nil || !ended {
		t.Errorf("EndNodeLost of a swept single server's session: %v, %v; want it ended", ended, err)
	}
}

// TestReclaimSingleServerSession: a node reclaims a session of no node,
// live or swept node_lost, and records it as its own; of two nodes
// reclaiming it at once, exactly one does. An ended one, or another
// node's live one, is not reclaimed.
func TestReclaimSingleServerSession(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b, single := openReal(t, dsn), openReal(t, dsn), openReal(t, dsn)
	ctx := context.Background()
	mustRegister(t, a, gormstore.NodeOptions{Name: "a", URL: "http://a:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	mustRegister(t, b, gormstore.NodeOptions{Name: "b", URL: "http://b:7420", LeaseTTL: time.Hour, Renewal: time.Hour})
	statuses := []core.Status{core.StatusActive, core.StatusIdle, core.StatusStarting, core.StatusError}
	for round := range 20 {
		id := "s-" + string(rune('a'+round))
		saveSingle(t, single, map[string]core.Status{id: statuses[round%len(statuses)]})
		var (
			wg  sync.WaitGroup
			won [2]bool
		)
		for i, s := range []*gormstore.DB{a, b} {
			wg.Go(func() {
				ok, err := s.ReclaimSession(ctx, id, []string{"a", "b"}[i])
				if err != nil {
					t.Error(err)
				}
				won[i] = ok
			})
		}
		wg.Wait()
		if won[0] == won[1] {
			t.Fatalf("round %d (%s): a reclaimed %v, b %v; want exactly one", round, statuses[round%len(statuses)], won[0], won[1])
		}
		winner := map[bool]string{true: "a", false: "b"}[won[0]]
		rec, err := a.GetSession(ctx, id)
		if err != nil || rec.Node != winner || rec.Status != core.StatusActive || rec.StatusReason != "" {
			t.Errorf("round %d: row %+v, %v; want ACTIVE on %s", round, rec, err, winner)
		}
	}
	saveSingle(t, single, map[string]core.Status{"s-ended": core.StatusTerminated})
	saveSessions(t, single, "b", core.StatusActive)
	for _, id := range []string{"s-ended", "b-0"} {
		if ok, err := a.ReclaimSession(ctx, id, "a"); err != nil || ok {
			t.Errorf("ReclaimSession(%s): %v, %v; want it left alone", id, ok, err)
		}
	}
}
