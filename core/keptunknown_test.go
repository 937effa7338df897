package core

import (
	"errors"
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
