package core

import "testing"

// TestReconcileTakesUpSingleServerSessions: a single server restarted as
// a node of a cluster on its data directory takes up the sessions its
// plugins kept whose records name no node (from before the database
// served a cluster), live or recorded node_lost by another node since,
// and records them as its own. A record of no node that no plugin here
// kept is left to the others (it may be another machine's), and a kept
// session whose record of no node has ended is hung up.
func TestReconcileTakesUpSingleServerSessions(t *testing.T) {
	keeper := newFakeKeeper()
	for _, id := range []string{"single-live", "single-idle", "single-swept", "single-ended"} {
		keeper.keep(id, 0, []byte("$ "), nil)
	}
	h := keptNodeHarness(t, &reclaimingStore{live: true}, keeper)
	h.saveRows(t,
		SessionRecord{ID: "single-live", Status: StatusActive},
		SessionRecord{ID: "single-idle", Status: StatusIdle},
		SessionRecord{ID: "single-swept", Status: StatusError, StatusReason: ReasonSingleServerLost},
		SessionRecord{ID: "single-ended", Status: StatusTerminated},
		SessionRecord{ID: "single-unkept", Status: StatusActive},
	)
	if n, err := h.m.Reconcile(t.Context()); err != nil || n != 0 {
		t.Fatalf("Reconcile = %d, %v; want 0 lost", n, err)
	}
	for _, id := range []string{"single-live", "single-idle", "single-swept"} {
		if kills, closes := keeper.pty(t, id).Counts(); kills != 0 || closes != 0 {
			t.Errorf("%s: kills=%d closes=%d, want it taken up", id, kills, closes)
		}
		if err := tryAttach(h.m, id); err != nil {
			t.Errorf("%s: attaching to the session taken up: %v", id, err)
		}
		// ACTIVE, or IDLE once tryAttach's client has left.
		if row := h.store.row(t, id); row.Node != "a" || (row.Status != StatusActive && row.Status != StatusIdle) {
			t.Errorf("%s: row %s %q on node %q, want ACTIVE or IDLE on a", id, row.Status, row.StatusReason, row.Node)
		}
	}
	if row := h.store.row(t, "single-unkept"); row.Node != "" || row.Status != StatusActive {
		t.Errorf("single-unkept: row %s on node %q, want it left alone", row.Status, row.Node)
	}
	if kills, closes := keeper.pty(t, "single-ended").Counts(); kills != 1 || closes != 1 {
		t.Errorf("single-ended: kills=%d closes=%d, want it hung up", kills, closes)
	}
}

// TestReconcileSingleServerSessionTakenElsewhere: a kept session whose
// record of no node this node cannot reclaim (another node did, or this
// node's lease is not live) is hung up, not run on unrecorded.
func TestReconcileSingleServerSessionTakenElsewhere(t *testing.T) {
	keeper := newFakeKeeper()
	keeper.keep("single", 0, []byte("$ "), nil)
	h := keptNodeHarness(t, &reclaimingStore{live: false}, keeper)
	h.saveRows(t, SessionRecord{ID: "single", Status: StatusActive})
	if _, err := h.m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := tryAttach(h.m, "single"); err == nil {
		t.Error("a session this node could not reclaim runs here")
	}
	if kills, closes := keeper.pty(t, "single").Counts(); kills != 1 || closes != 1 {
		t.Errorf("kills=%d closes=%d, want it hung up", kills, closes)
	}
	if row := h.store.row(t, "single"); row.Node != "" || row.Status != StatusActive {
		t.Errorf("row %s on node %q, want it left to the node that has it", row.Status, row.Node)
	}
}
