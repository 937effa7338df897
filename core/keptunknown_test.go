package core

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// attachedTo reports whether Reconcile asked keeper for session id (to
// take it up or to hang it up).
func attachedTo(k *fakeKeeper, id string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, ok := k.attached[id]
	return ok
}

// A store that knows none of the sessions the plugins kept, because it
// holds no session at all (a new database) or only others' (another
// database, an older backup), has Reconcile refuse with how many were
// kept, and touch neither the sessions nor the records; the same store
// knowing one of them, even as ended, reconciles as before.
func TestReconcileRefusesWhenTheStoreKnowsNoKeptSession(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rows  []SessionRecord
		empty bool
	}{
		{"new database", nil, true},
		{"other records", []SessionRecord{
			{ID: "older", Status: StatusTerminated},
			{ID: "live-elsewhere", Status: StatusActive},
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keeper := newFakeKeeper()
			keeper.keep("a", 0, []byte("$ "), nil)
			keeper.keep("b", 0, []byte("$ "), nil)
			h := survivingHarness(t, keeper, nil)
			h.saveRows(t, tc.rows...)

			n, err := h.m.Reconcile(t.Context())
			var uk *UnknownKeptError
			if !errors.As(err, &uk) || uk.Kept != 2 || uk.Empty != tc.empty {
				t.Fatalf("Reconcile = %d, %v; want an UnknownKeptError of 2 kept, empty %v", n, err, tc.empty)
			}
			for _, id := range []string{"a", "b"} {
				if attachedTo(keeper, id) {
					t.Errorf("%s: the keeper was asked for it (taken up or hung up)", id)
				}
			}
			// Not even the live record no plugin kept is recorded lost:
			// this database may be the wrong one for it too.
			for _, r := range tc.rows {
				if row := h.store.row(t, r.ID); row.Status != r.Status {
					t.Errorf("%s: status %s, want %s as it was", r.ID, row.Status, r.Status)
				}
			}
		})
	}

	t.Run("one known as ended", func(t *testing.T) {
		keeper := newFakeKeeper()
		keeper.keep("stray", 0, []byte("$ "), nil)
		keeper.keep("was-ended", 0, []byte("$ "), nil)
		h := survivingHarness(t, keeper, nil)
		h.saveRows(t, SessionRecord{ID: "was-ended", Status: StatusTerminated})
		if _, err := h.m.Reconcile(t.Context()); err != nil {
			t.Fatalf("Reconcile: %v; want the database taken as the sessions' own", err)
		}
		for _, id := range []string{"stray", "was-ended"} {
			if kills, closes := keeper.pty(t, id).Counts(); kills != 1 || closes != 1 {
				t.Errorf("%s: kills=%d closes=%d, want it hung up", id, kills, closes)
			}
		}
	})
}

// Options.HangUpUnknownKept hangs the sessions up, as sessions no live
// record claims, when the store knows none of them.
func TestReconcileHangsUpUnknownKeptWhenAsked(t *testing.T) {
	keeper := newFakeKeeper()
	keeper.keep("a", 0, []byte("$ "), nil)
	h := newHarness(t, func(o *Options) {
		o.Plugins = survivingPlugins{Dispatcher: o.Plugins, keeper: keeper}
		o.HangUpUnknownKept = true
	})
	if _, err := h.m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if kills, closes := keeper.pty(t, "a").Counts(); kills != 1 || closes != 1 {
		t.Errorf("kills=%d closes=%d, want it hung up", kills, closes)
	}
}

// A new database with nothing kept reconciles as always.
func TestReconcileNewDatabaseNothingKept(t *testing.T) {
	h := survivingHarness(t, newFakeKeeper(), nil)
	if n, err := h.m.Reconcile(t.Context()); err != nil || n != 0 {
		t.Fatalf("Reconcile = %d, %v; want 0, nil", n, err)
	}
}

// A node started on another node's data directory, or under a new name on
// its own, finds the sessions its plugins kept recorded as another node's:
// Reconcile refuses, naming those nodes, and touches neither the sessions
// nor the records, rather than hang up sessions their node may still run
// or come back for (a record recorded node_lost included). One kept
// session of its own, or of the single server it was, makes the database
// the sessions' own, as on a single server.
func TestReconcileNodeRefusesOtherNodesKeptSessions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		rows      []SessionRecord
		wantNodes []string // nil: no refusal
	}{
		{"another node's", []SessionRecord{
			{ID: "a", Node: "d", Status: StatusActive},
			{ID: "b", Node: "c", Status: StatusError, StatusReason: "node_lost: gone"},
		}, []string{"c", "d"}},
		{"one of its own", []SessionRecord{
			{ID: "a", Node: "c", Status: StatusActive},
			{ID: "b", Node: "e", Status: StatusTerminated},
		}, nil},
		{"one of the single server's", []SessionRecord{
			{ID: "a", Node: "c", Status: StatusActive},
			{ID: "b", Status: StatusTerminated},
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keeper := newFakeKeeper()
			keeper.keep("a", 0, []byte("$ "), nil)
			keeper.keep("b", 0, []byte("$ "), nil)
			h := newHarness(t, func(o *Options) {
				o.Plugins = survivingPlugins{Dispatcher: o.Plugins, keeper: keeper}
				o.NodeName = "e"
			})
			h.saveRows(t, tc.rows...)

			_, err := h.m.Reconcile(t.Context())
			if tc.wantNodes == nil {
				if err != nil {
					t.Fatalf("Reconcile: %v; want the database taken as the sessions' own", err)
				}
				return
			}
			var uk *UnknownKeptError
			if !errors.As(err, &uk) || uk.Kept != 2 || uk.Empty || !slices.Equal(uk.Nodes, tc.wantNodes) {
				t.Fatalf("Reconcile: %v; want an UnknownKeptError of 2 kept, of nodes %v", err, tc.wantNodes)
			}
			if want := "records them as sessions of nodes c, d, not of this node"; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q; want it to say %q", err, want)
			}
			for _, r := range tc.rows {
				if attachedTo(keeper, r.ID) {
					t.Errorf("%s: the keeper was asked for it (taken up or hung up)", r.ID)
				}
				if row := h.store.row(t, r.ID); row.Status != r.Status {
					t.Errorf("%s: status %s, want %s as it was", r.ID, row.Status, r.Status)
				}
			}
		})
	}
}
