package gormstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
)

func testQuerySessions(t *testing.T, e env) {
	ctx := context.Background()
	// Creation times with every number of fractional digits, and ties
	// broken by id, so the order and the cursor comparison are tested on
	// the backend's own time representation.
	rows := []struct {
		id, env string
		status  core.Status
		step    time.Duration
	}{
		{"k", "e1", core.StatusActive, time.Second},
		{"b", "e2", core.StatusIdle, 877 * time.Microsecond},
		{"z", "e1", core.StatusTerminated, 0}, // same time as b
		{"a", "e1", core.StatusTerminated, 0}, // same time as b
		{"m", "e2", core.StatusError, 100 * time.Millisecond},
		{"c", "e1", core.StatusStarting, time.Microsecond},
		{"y", "e1", core.StatusIdle, 9 * time.Second},
	}
	for _, r := range rows {
		e.clk.Advance(r.step)
		mustSaveSession(t, e.s, core.SessionRecord{ID: r.id, EnvironmentID: r.env, Status: r.status})
	}
	all := []string{"k", "a", "b", "z", "m", "c", "y"}

	tests := []struct {
		name string
		q    core.SessionQuery
		want []string
	}{
		{"all", core.SessionQuery{}, all},
		{"environment", core.SessionQuery{EnvironmentID: "e2"}, []string{"b", "m"}},
		{"statuses", core.SessionQuery{Statuses: []core.Status{core.StatusTerminated, core.StatusError}}, []string{"a", "z", "m"}},
		{"both", core.SessionQuery{EnvironmentID: "e1", Statuses: []core.Status{core.StatusIdle, core.StatusStarting}}, []string{"c", "y"}},
		{"limit", core.SessionQuery{Limit: 3}, []string{"k", "a", "b"}},
		{"unknown environment", core.SessionQuery{EnvironmentID: "nope"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := e.s.QuerySessions(ctx, tt.q)
			if err != nil {
				t.Fatalf("QuerySessions: %v", err)
			}
			assertEqual(t, "ids", ids(recs), tt.want)
		})
	}

	// Paging with every page size walks every row once, in order.
	for size := 1; size <= len(all)+1; size++ {
		var got []string
		q := core.SessionQuery{Limit: size}
		for range len(all) + 2 {
			recs, err := e.s.QuerySessions(ctx, q)
			if err != nil {
				t.Fatalf("QuerySessions: %v", err)
			}
			if len(recs) == 0 {
				break
			}
			got = append(got, ids(recs)...)
			last := recs[len(recs)-1]
			q.After = &core.SessionKey{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		assertEqual(t, "pages", got, all)
	}
}

func testDeleteSessions(t *testing.T, e env) {
	ctx := context.Background()
	ended := []core.Status{core.StatusTerminated, core.StatusError}
	mustSaveSession(t, e.s, core.SessionRecord{ID: "old-done", Status: core.StatusTerminated})
	mustSaveSession(t, e.s, core.SessionRecord{ID: "old-error", Status: core.StatusError})
	mustSaveSession(t, e.s, core.SessionRecord{ID: "old-live", Status: core.StatusIdle})
	mustSaveSession(t, e.s, core.SessionRecord{ID: "ended-late", Status: core.StatusActive})
	cutoff := e.clk.Advance(time.Hour)
	// Ended after the cutoff: its updated_at is what counts.
	if err := e.s.UpdateSession(ctx, "ended-late", core.SessionUpdate{Status: ptr(core.StatusTerminated)}); err != nil {
		t.Fatal(err)
	}
	mustSaveSession(t, e.s, core.SessionRecord{ID: "new-done", Status: core.StatusTerminated})

	n, err := e.s.DeleteSessions(ctx, ended, cutoff)
	if err != nil {
		t.Fatalf("DeleteSessions: %v", err)
	}
	if n != 2 {
		t.Errorf("DeleteSessions deleted %d rows, want 2", n)
	}
	recs, err := e.s.ListSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "rows left", ids(recs), []string{"ended-late", "old-live", "new-done"})
	if _, err := e.s.GetSession(ctx, "old-done"); !errors.Is(err, core.ErrSessionNotFound) {
		t.Errorf("GetSession of a deleted row = %v, want ErrSessionNotFound", err)
	}
	if n, err := e.s.DeleteSessions(ctx, ended, cutoff); err != nil || n != 0 {
		t.Errorf("DeleteSessions again = %d, %v; want 0, nil", n, err)
	}
	if _, err := e.s.DeleteSessions(ctx, nil, cutoff); !errors.Is(err, core.ErrInvalidArgument) {
		t.Errorf("DeleteSessions without statuses = %v, want ErrInvalidArgument", err)
	}
}

// DeleteSessionsButNodeLost deletes what DeleteSessions does but the rows
// ERROR with a node_lost reason, with or without detail.
func testDeleteSessionsButNodeLost(t *testing.T, e env) {
	ctx := context.Background()
	ended := []core.Status{core.StatusTerminated, core.StatusError}
	for _, rec := range []core.SessionRecord{
		{ID: "lost", Node: "a", Status: core.StatusError, StatusReason: "node_lost"},
		{ID: "lost-detail", Node: "a", Status: core.StatusError, StatusReason: core.ReasonNodeLost},
		{ID: "error", Node: "a", Status: core.StatusError, StatusReason: "plugin_crashed"},
		{ID: "error-no-reason", Node: "a", Status: core.StatusError},
		{ID: "not-lost", Node: "a", Status: core.StatusError, StatusReason: "node_lostness"},
		{ID: "done", Node: "a", Status: core.StatusTerminated, StatusReason: core.ReasonNodeLost},
		{ID: "live", Node: "a", Status: core.StatusActive},
	} {
		mustSaveSession(t, e.s, rec)
	}
	n, err := e.s.DeleteSessionsButNodeLost(ctx, ended, e.clk.Advance(time.Second))
	if err != nil || n != 4 {
		t.Errorf("DeleteSessionsButNodeLost = %d, %v; want 4, nil", n, err)
	}
	recs, err := e.s.ListSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertEqual(t, "rows left", ids(recs), []string{"live", "lost", "lost-detail"})
}

func testPing(t *testing.T, e env) {
	ctx := context.Background()
	if err := e.s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	// A database that answers a ping but not a read of its sessions
	// fails: on PostgreSQL, its sessions table locked by another
	// transaction; on SQLite, whose ping reads nothing, the table gone.
	if e.b.name == "postgres" {
		tx := e.s.Gorm().Begin()
		if err := tx.Exec("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE").Error; err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err := e.s.Ping(short)
		cancel()
		tx.Rollback()
		if err == nil {
			t.Error("Ping succeeded while the sessions table was locked")
		}
	} else {
		if err := e.s.Gorm().Exec("DROP TABLE sessions").Error; err != nil {
			t.Fatal(err)
		}
		if err := e.s.Ping(ctx); err == nil {
			t.Error("Ping succeeded with the sessions table gone")
		}
	}
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Ping(ctx); err == nil {
		t.Error("Ping of a closed store succeeded")
	}
}

func ids(recs []core.SessionRecord) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}
