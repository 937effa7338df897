package core

import (
	"context"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// TestLingeringCopyHidesNoOtherNode: on node b, a session that exited and
// lingers stands for its id only while the store's record is its own.
// Once the id is created again on node a (the shared store's row names a
// and runs), getting and listing the id on b answer a's record, not b's
// lingering copy.
func TestLingeringCopyHidesNoOtherNode(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.NodeName = "b" })
	ctx := t.Context()
	_, pty := h.create(t, "x")
	pty.End(shared.ExitStatus{Code: 3})
	eventually(t, "x to exit and linger", func() bool {
		return h.session(t, "x").hasExited() && h.store.row(t, "x").Status == StatusTerminated
	})
	if rec, err := h.m.GetSession(ctx, "x"); err != nil || rec.Node != "b" || rec.Status != StatusTerminated {
		t.Fatalf("GetSession of b's lingering x: %+v, %v; want b's TERMINATED record", rec, err)
	}

	// x created again on a, as the shared database would hold it.
	now := time.Now().UTC()
	if err := h.store.SaveSession(ctx, SessionRecord{ID: "x", EnvironmentID: "fake", Node: "a", Status: StatusActive,
		Cols: 80, Rows: 24, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	want := func(what string, rec SessionRecord) {
		t.Helper()
		if rec.Node != "a" || rec.Status != StatusActive || rec.ExitCode != nil {
			t.Errorf("%s: %+v; want a's ACTIVE record, not b's lingering copy", what, rec)
		}
	}
	rec, err := h.m.GetSession(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	want("GetSession", rec)
	all, err := h.m.ListSessions(ctx)
	if err != nil || len(all) != 1 {
		t.Fatalf("ListSessions: %+v, %v; want x", all, err)
	}
	want("ListSessions", all[0])
	page, err := h.m.QuerySessions(ctx, ListOptions{Statuses: []Status{StatusActive}})
	if err != nil || len(page.Sessions) != 1 {
		t.Fatalf("QuerySessions(ACTIVE): %+v, %v; want x", page.Sessions, err)
	}
	want("QuerySessions", page.Sessions[0])
}

// TestLingeringCopyWhenStoreFails: a lingering session whose record the
// store cannot give is answered from memory, as before it was read there.
func TestLingeringCopyWhenStoreFails(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.NodeName = "b" })
	_, pty := h.create(t, "x")
	pty.End(shared.ExitStatus{Code: 3})
	eventually(t, "x to exit and linger", func() bool {
		return h.session(t, "x").hasExited() && h.store.row(t, "x").Status == StatusTerminated
	})
	h.store.mu.Lock()
	delete(h.store.sessions, "x")
	h.store.mu.Unlock()
	rec, err := h.m.GetSession(context.Background(), "x")
	if err != nil || rec.Node != "b" || rec.Status != StatusTerminated || rec.ExitCode == nil || *rec.ExitCode != 3 {
		t.Errorf("GetSession: %+v, %v; want the lingering copy, exit code 3", rec, err)
	}
}
