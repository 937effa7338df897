package core

import (
	"context"
	"testing"

	"github.com/ptyhost/ptyhost/shared"
)

// noPTYKeeper keeps what its fakeKeeper keeps, but answers every Attach
// with neither a PTY nor an error, as an embedder's own SurvivorSource
// might.
type noPTYKeeper struct{ *fakeKeeper }

func (noPTYKeeper) Attach(context.Context, string, int64) (shared.PTY, int64, error) {
	return nil, 0, nil
}

// TestReconcileKeeperWithNoPTYAndNoError: a Keeper whose Attach returns
// neither a PTY nor an error fails the take-up, as a failed Attach does:
// the session it kept is recorded lost, the one the store does not know
// is not hung up through a PTY that is not there, and the server goes
// on. Without the check the take-up panicked the server.
func TestReconcileKeeperWithNoPTYAndNoError(t *testing.T) {
	fk := newFakeKeeper()
	fk.keep("kept", 0, []byte("$ "), nil)
	fk.keep("stray", 0, []byte("$ "), nil)
	k := noPTYKeeper{fk}
	list := []Survivor{
		{KeptSession: fk.kept["kept"].KeptSession, Keeper: k},
		{KeptSession: fk.kept["stray"].KeptSession, Keeper: k},
	}
	h := newHarness(t, func(o *Options) { o.Plugins = listedSurvivors{Dispatcher: o.Plugins, list: list} })
	h.saveRows(t, SessionRecord{ID: "kept", Status: StatusActive})

	if n, err := h.m.Reconcile(t.Context()); err != nil || n != 1 {
		t.Fatalf("Reconcile = %d, %v; want 1 lost, no error", n, err)
	}
	if row := h.store.row(t, "kept"); row.Status != StatusError || row.StatusReason != ReasonServerLost {
		t.Errorf("kept: %+v, want ERROR %q", row, ReasonServerLost)
	}
	// The manager goes on: a new session runs.
	h.create(t, "after")
}
