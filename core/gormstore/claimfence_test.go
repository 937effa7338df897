package gormstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
)

// testClaimFencedAfterTakeover: a server whose claim another server took
// over (it missed its heartbeats for the TTL) and that has not noticed
// yet cannot write its sessions' rows: a late update, queued while the
// database was out of reach, does not land on the rows the new owner
// recorded.
func testClaimFencedAfterTakeover(t *testing.T, e claimEnv) {
	ctx := context.Background()
	a := e.server(t, time.Hour)
	mustClaim(t, a, gormstore.Owner{DataDir: "/srv/a", Hostname: "host-a"})
	mustSaveSession(t, a, core.SessionRecord{ID: "s1", EnvironmentID: "e", Status: core.StatusActive})
	e.clk.Advance(16 * time.Second) // a's lease expires
	b := e.server(t, time.Hour)
	mustClaim(t, b, gormstore.Owner{DataDir: "/srv/b", Hostname: "host-b"})
	lost, reason := core.StatusError, core.ReasonServerLost
	if err := b.UpdateSession(ctx, "s1", core.SessionUpdate{Status: &lost, StatusReason: &reason}); err != nil {
		t.Fatalf("the new owner's update: %v", err)
	}
	idle := core.StatusIdle
	err := a.UpdateSession(ctx, "s1", core.SessionUpdate{Status: &idle})
	if !errors.Is(err, core.ErrSessionNotFound) {
		t.Errorf("the old owner's late update: %v, want it fenced (not found)", err)
	}
	if rec, err := b.GetSession(ctx, "s1"); err != nil || rec.Status != core.StatusError || rec.StatusReason != core.ReasonServerLost {
		t.Errorf("row after the late update: %+v, %v; want the new owner's server_lost", rec, err)
	}
	// The new owner's writes are its own.
	if err := b.UpdateSession(ctx, "s1", core.SessionUpdate{Cols: ptr(90)}); err != nil {
		t.Errorf("the new owner's update: %v", err)
	}
}
