package gormstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
)

// env is one suite case's world: a fresh store and its clock.
type env struct {
	s   *gormstore.DB
	clk *clock
	dsn string
	b   backend
}

// TestStore runs every case against every backend, each case on an empty
// database of its own.
func TestStore(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, e env)
	}{
		{"EnvironmentsCRUD", testEnvironmentsCRUD},
		{"EnvironmentDuplicate", testEnvironmentDuplicate},
		{"UpdateEnvironment", testUpdateEnvironment},
		{"NotFound", testNotFound},
		{"InvalidArgument", testInvalidArgument},
		{"SaveSessionUpsert", testSaveSessionUpsert},
		{"UpdateSessionPartial", testUpdateSessionPartial},
		{"UpdateSessionEachField", testUpdateSessionEachField},
		{"ExitCodeNullVersusZero", testExitCode},
		{"ListSessionsOrderAndFilter", testListSessions},
		{"QuerySessionsFilterAndPage", testQuerySessions},
		{"DeleteEndedSessions", testDeleteSessions},
		{"DeleteEndedSessionsButNodeLost", testDeleteSessionsButNodeLost},
		{"Ping", testPing},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"ContextCanceled", testContextCanceled},
		{"ReopenKeepsData", testReopen},
		{"NewOnCallersGorm", testNew},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					dsn := b.freshDSN(t)
					clk := newClock()
					c.run(t, env{s: openStore(t, dsn, clk), clk: clk, dsn: dsn, b: b})
				})
			}
		})
	}
}

func testEnvironmentsCRUD(t *testing.T, e env) {
	ctx := context.Background()
	t1 := e.clk.Advance(time.Second)
	local := core.Environment{ID: "local", Name: "This host", Type: "local", Node: "node-a"}
	mustCreateEnv(t, e.s, local)
	t2 := e.clk.Advance(time.Second)
	docker := core.Environment{ID: "docker", Name: "Go image", Type: "docker", Config: json.RawMessage(`{"image":"golang:1.26"}`), IdleTimeout: "never",
		Nodes: []string{"node-b", "node-a"}}
	mustCreateEnv(t, e.s, docker)

	local.CreatedAt, local.UpdatedAt = t1, t1
	docker.CreatedAt, docker.UpdatedAt = t2, t2
	got, err := e.s.GetEnvironment(ctx, "docker")
	if err != nil {
		t.Fatalf("GetEnvironment: %v", err)
	}
	assertEqual(t, "GetEnvironment", got, docker)

	list, err := e.s.ListEnvironments(ctx)
	if err != nil {
		t.Fatalf("ListEnvironments: %v", err)
	}
	assertEqual(t, "ListEnvironments (creation order)", list, []core.Environment{local, docker})

	if err := e.s.DeleteEnvironment(ctx, "local"); err != nil {
		t.Fatalf("DeleteEnvironment: %v", err)
	}
	list, err = e.s.ListEnvironments(ctx)
	if err != nil {
		t.Fatalf("ListEnvironments: %v", err)
	}
	assertEqual(t, "ListEnvironments after delete", list, []core.Environment{docker})
}

func testEnvironmentDuplicate(t *testing.T, e env) {
	ctx := context.Background()
	mustCreateEnv(t, e.s, core.Environment{ID: "a", Name: "first", Type: "local"})
	err := e.s.CreateEnvironment(ctx, core.Environment{ID: "a", Name: "second", Type: "docker"})
	if !errors.Is(err, core.ErrAlreadyExists) {
		t.Fatalf("CreateEnvironment of an existing id = %v, want ErrAlreadyExists", err)
	}
	got, err := e.s.GetEnvironment(ctx, "a")
	if err != nil {
		t.Fatalf("GetEnvironment: %v", err)
	}
	if got.Name != "first" {
		t.Errorf("duplicate create changed the row: name %q, want %q", got.Name, "first")
	}
}

func testUpdateEnvironment(t *testing.T, e env) {
	ctx := context.Background()
	t1 := e.clk.Advance(time.Second)
	mustCreateEnv(t, e.s, core.Environment{ID: "d", Name: "old", Type: "docker", Config: json.RawMessage(`{"image":"a"}`), Nodes: []string{"a"}})
	mustCreateEnv(t, e.s, core.Environment{ID: "other", Name: "other", Type: "local"})
	t2 := e.clk.Advance(time.Second)
	// The type is not the store's to change.
	err := e.s.UpdateEnvironment(ctx, core.Environment{ID: "d", Name: "new", Type: "local", Config: json.RawMessage(`{"image":"b"}`), IdleTimeout: "5m0s",
		Node: "n1", Nodes: []string{"b", "c"}})
	if err != nil {
		t.Fatalf("UpdateEnvironment: %v", err)
	}
	got, err := e.s.GetEnvironment(ctx, "d")
	if err != nil {
		t.Fatalf("GetEnvironment: %v", err)
	}
	want := core.Environment{ID: "d", Name: "new", Type: "docker", Config: json.RawMessage(`{"image":"b"}`), IdleTimeout: "5m0s", Node: "n1", Nodes: []string{"b", "c"}, CreatedAt: t1, UpdatedAt: t2}
	assertEqual(t, "after UpdateEnvironment", got, want)
	if other, _ := e.s.GetEnvironment(ctx, "other"); other.Name != "other" || !other.UpdatedAt.Equal(t1) {
		t.Errorf("UpdateEnvironment changed another row: %+v", other)
	}

	tests := []struct {
		name string
		env  core.Environment
		want error
	}{
		{"unknown id", core.Environment{ID: "nope", Name: "x"}, core.ErrEnvironmentNotFound},
		{"config not JSON", core.Environment{ID: "d", Name: "x", Config: json.RawMessage(`{oops`)}, core.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.s.UpdateEnvironment(ctx, tt.env); !errors.Is(err, tt.want) {
				t.Errorf("UpdateEnvironment = %v, want an error wrapping %v", err, tt.want)
			}
		})
	}
	if got, _ := e.s.GetEnvironment(ctx, "d"); got.Name != "new" {
		t.Errorf("a failed update changed the row: %+v", got)
	}
}

func testNotFound(t *testing.T, e env) {
	ctx := context.Background()
	mustSaveSession(t, e.s, core.SessionRecord{ID: "other", Status: core.StatusIdle})
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"GetEnvironment", func() error { _, err := e.s.GetEnvironment(ctx, "nope"); return err }, core.ErrEnvironmentNotFound},
		{"DeleteEnvironment", func() error { return e.s.DeleteEnvironment(ctx, "nope") }, core.ErrEnvironmentNotFound},
		{"GetSession", func() error { _, err := e.s.GetSession(ctx, "nope"); return err }, core.ErrSessionNotFound},
		{"UpdateSession", func() error {
			return e.s.UpdateSession(ctx, "nope", core.SessionUpdate{Cols: ptr(80)})
		}, core.ErrSessionNotFound},
		{"UpdateSessionEmpty", func() error { return e.s.UpdateSession(ctx, "nope", core.SessionUpdate{}) }, core.ErrSessionNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want an error wrapping %v", err, tt.want)
			}
		})
	}
}

func testInvalidArgument(t *testing.T, e env) {
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"EnvironmentEmptyID", func() error { return e.s.CreateEnvironment(ctx, core.Environment{Type: "local"}) }},
		{"EnvironmentBadConfig", func() error {
			return e.s.CreateEnvironment(ctx, core.Environment{ID: "x", Config: json.RawMessage(`{oops`)})
		}},
		{"SessionEmptyID", func() error { return e.s.SaveSession(ctx, core.SessionRecord{}) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, core.ErrInvalidArgument) {
				t.Errorf("got %v, want an error wrapping ErrInvalidArgument", err)
			}
		})
	}
}

func testSaveSessionUpsert(t *testing.T, e env) {
	ctx := context.Background()
	t1 := e.clk.Advance(time.Second)
	first := core.SessionRecord{
		ID: "s1", EnvironmentID: "local", ProjectID: "p", BranchName: "main",
		WorktreePath: "/src/p", Status: core.StatusTerminated, StatusReason: "exited",
		ActiveConnections: 2, Cols: 80, Rows: 24, ExitCode: ptr(3), ExitSignal: "SIGHUP",
		LastActiveAt: t1.Add(-time.Minute),
	}
	mustSaveSession(t, e.s, first)
	first.CreatedAt, first.UpdatedAt = t1, t1
	assertSession(t, e.s, first)

	// The id is used again by a new session: every column is replaced,
	// including the ones the new record leaves empty.
	t2 := e.clk.Advance(time.Second)
	// A caller-chosen created_at is kept, normalised to UTC microseconds.
	created := time.Date(2024, 1, 1, 0, 0, 0, 999999999, time.FixedZone("EST", -5*3600))
	second := core.SessionRecord{
		ID: "s1", EnvironmentID: "docker", Status: core.StatusActive,
		Cols: 120, Rows: 40, CreatedAt: created,
	}
	mustSaveSession(t, e.s, second)
	second.CreatedAt, second.UpdatedAt = kept(created), t2
	assertSession(t, e.s, second)

	all, err := e.s.ListSessions(ctx)
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	if len(all) != 1 {
		t.Errorf("ListSessions after two saves of one id: %d rows, want 1", len(all))
	}
}

func testUpdateSessionPartial(t *testing.T, e env) {
	ctx := context.Background()
	t0 := e.clk.Advance(time.Second)
	rec := core.SessionRecord{
		ID: "s1", EnvironmentID: "local", ProjectID: "p", Status: core.StatusActive,
		StatusReason: "started", ActiveConnections: 1, Cols: 80, Rows: 24, ExitSignal: "",
		LastActiveAt: t0,
	}
	mustSaveSession(t, e.s, rec)
	rec.CreatedAt, rec.UpdatedAt = t0, t0

	lastActive := time.Date(2025, 6, 1, 12, 0, 0, 1500, time.UTC)
	steps := []struct {
		name  string
		u     core.SessionUpdate
		apply func(r *core.SessionRecord)
	}{
		{"nothing set touches only updated_at", core.SessionUpdate{}, func(*core.SessionRecord) {}},
		{"status and size", core.SessionUpdate{Status: ptr(core.StatusIdle), Cols: ptr(132), Rows: ptr(50)},
			func(r *core.SessionRecord) { r.Status, r.Cols, r.Rows = core.StatusIdle, 132, 50 }},
		{"connections to zero", core.SessionUpdate{ActiveConnections: ptr(0)},
			func(r *core.SessionRecord) { r.ActiveConnections = 0 }},
		{"reason to empty", core.SessionUpdate{StatusReason: ptr("")},
			func(r *core.SessionRecord) { r.StatusReason = "" }},
		{"last active", core.SessionUpdate{LastActiveAt: &lastActive},
			func(r *core.SessionRecord) { r.LastActiveAt = kept(lastActive) }},
		{"exit", core.SessionUpdate{
			Status: ptr(core.StatusTerminated), ExitCode: ptr(137), ExitSignal: ptr("SIGKILL"),
		}, func(r *core.SessionRecord) {
			r.Status, r.ExitCode, r.ExitSignal = core.StatusTerminated, ptr(137), "SIGKILL"
		}},
	}
	for _, st := range steps {
		now := e.clk.Advance(time.Second)
		if err := e.s.UpdateSession(ctx, "s1", st.u); err != nil {
			t.Fatalf("%s: UpdateSession: %v", st.name, err)
		}
		st.apply(&rec)
		rec.UpdatedAt = now
		got, err := e.s.GetSession(ctx, "s1")
		if err != nil {
			t.Fatalf("%s: GetSession: %v", st.name, err)
		}
		assertEqual(t, st.name, got, rec)
	}
}

func testExitCode(t *testing.T, e env) {
	ctx := context.Background()
	mustSaveSession(t, e.s, core.SessionRecord{ID: "running", Status: core.StatusActive})
	mustSaveSession(t, e.s, core.SessionRecord{ID: "ok", Status: core.StatusTerminated, ExitCode: ptr(0)})
	mustSaveSession(t, e.s, core.SessionRecord{ID: "updated", Status: core.StatusActive})
	if err := e.s.UpdateSession(ctx, "updated", core.SessionUpdate{ExitCode: ptr(0)}); err != nil {
		t.Fatalf("UpdateSession: %v", err)
	}
	// A nil ExitCode in an update leaves the 0 alone.
	if err := e.s.UpdateSession(ctx, "updated", core.SessionUpdate{Cols: ptr(1)}); err != nil {
		t.Fatalf("UpdateSession: %v", err)
	}
	tests := []struct {
		id   string
		want *int
	}{
		{"running", nil},
		{"ok", ptr(0)},
		{"updated", ptr(0)},
	}
	for _, tt := range tests {
		got, err := e.s.GetSession(ctx, tt.id)
		if err != nil {
			t.Fatalf("GetSession(%s): %v", tt.id, err)
		}
		assertEqual(t, tt.id+" exit code", got.ExitCode, tt.want)
	}
}

func testListSessions(t *testing.T, e env) {
	ctx := context.Background()
	// Created in an order that is not the ids' order.
	rows := []struct {
		id     string
		status core.Status
	}{
		{"c", core.StatusActive},
		{"a", core.StatusIdle},
		{"d", core.StatusTerminated},
		{"b", core.StatusIdle},
		{"e", core.StatusError},
	}
	for _, r := range rows {
		e.clk.Advance(time.Millisecond)
		mustSaveSession(t, e.s, core.SessionRecord{ID: r.id, Status: r.status})
	}
	// Two rows created in the same microsecond list by id.
	e.clk.Advance(time.Millisecond)
	mustSaveSession(t, e.s, core.SessionRecord{ID: "g", Status: core.StatusActive})
	mustSaveSession(t, e.s, core.SessionRecord{ID: "f", Status: core.StatusActive})

	tests := []struct {
		name     string
		statuses []core.Status
		want     []string
	}{
		{"all", nil, []string{"c", "a", "d", "b", "e", "f", "g"}},
		{"idle", []core.Status{core.StatusIdle}, []string{"a", "b"}},
		{"live", []core.Status{core.StatusActive, core.StatusIdle}, []string{"c", "a", "b", "f", "g"}},
		{"ended", []core.Status{core.StatusTerminated, core.StatusError}, []string{"d", "e"}},
		{"none match", []core.Status{"NOPE"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := e.s.ListSessions(ctx, tt.statuses...)
			if err != nil {
				t.Fatalf("ListSessions: %v", err)
			}
			ids := []string{}
			for _, r := range recs {
				ids = append(ids, r.ID)
			}
			assertEqual(t, "ids", ids, tt.want)
		})
	}
}

func testConcurrentUpdates(t *testing.T, e env) {
	ctx := context.Background()
	mustSaveSession(t, e.s, core.SessionRecord{ID: "shared", Status: core.StatusActive})
	const workers, updates = 20, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers*(updates+1))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := core.SessionRecord{ID: "own-" + string(rune('a'+w)), Status: core.StatusIdle}
			if err := e.s.SaveSession(ctx, own); err != nil {
				errs <- err
			}
			for i := range updates {
				u := core.SessionUpdate{ActiveConnections: ptr(w), Cols: ptr(i)}
				if err := e.s.UpdateSession(ctx, "shared", u); err != nil {
					errs <- err
				}
				if err := e.s.UpdateSession(ctx, own.ID, u); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	got, err := e.s.GetSession(ctx, "shared")
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if got.ActiveConnections < 0 || got.ActiveConnections >= workers || got.Cols != updates-1 {
		t.Errorf("after concurrent updates: connections %d cols %d, want one worker's last update", got.ActiveConnections, got.Cols)
	}
	all, err := e.s.ListSessions(ctx)
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	if len(all) != workers+1 {
		t.Errorf("ListSessions: %d rows, want %d", len(all), workers+1)
	}
}

func testContextCanceled(t *testing.T, e env) {
	mustSaveSession(t, e.s, core.SessionRecord{ID: "s1", Status: core.StatusActive})
	mustCreateEnv(t, e.s, core.Environment{ID: "local", Type: "local"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateEnvironment", func() error { return e.s.CreateEnvironment(ctx, core.Environment{ID: "x"}) }},
		{"GetEnvironment", func() error { _, err := e.s.GetEnvironment(ctx, "local"); return err }},
		{"ListEnvironments", func() error { _, err := e.s.ListEnvironments(ctx); return err }},
		{"DeleteEnvironment", func() error { return e.s.DeleteEnvironment(ctx, "local") }},
		{"SaveSession", func() error { return e.s.SaveSession(ctx, core.SessionRecord{ID: "s2"}) }},
		{"UpdateSession", func() error { return e.s.UpdateSession(ctx, "s1", core.SessionUpdate{Cols: ptr(1)}) }},
		{"GetSession", func() error { _, err := e.s.GetSession(ctx, "s1"); return err }},
		{"ListSessions", func() error { _, err := e.s.ListSessions(ctx); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("with a canceled ctx: %v, want context.Canceled", err)
			}
		})
	}
	// Nothing was written.
	if _, err := e.s.GetEnvironment(context.Background(), "local"); err != nil {
		t.Errorf("GetEnvironment after canceled delete: %v", err)
	}
	if _, err := e.s.GetSession(context.Background(), "s2"); !errors.Is(err, core.ErrSessionNotFound) {
		t.Errorf("GetSession after canceled save: %v, want ErrSessionNotFound", err)
	}
}

func testReopen(t *testing.T, e env) {
	ctx := context.Background()
	// The case's database was empty: its Open made the tables.
	if !e.s.Created() {
		t.Error("Created() = false for the Open that made the tables")
	}
	now := e.clk.Advance(time.Second)
	want := core.SessionRecord{ID: "s1", EnvironmentID: "local", Status: core.StatusIdle, ExitCode: ptr(0), CreatedAt: now, UpdatedAt: now}
	mustSaveSession(t, e.s, want)
	mustCreateEnv(t, e.s, core.Environment{ID: "local", Type: "local"})
	if err := e.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Opening again migrates again, which must keep the rows.
	s := openStore(t, e.dsn, e.clk)
	if s.Created() {
		t.Error("Created() = true for an Open of a database that had the tables")
	}
	assertSession(t, s, want)
	if _, err := s.GetEnvironment(ctx, "local"); err != nil {
		t.Errorf("GetEnvironment after reopen: %v", err)
	}
}

func testNew(t *testing.T, e env) {
	ctx := context.Background()
	// The data written through Open is there for a store made by New on
	// the embedder's own *gorm.DB, and the other way round.
	mustCreateEnv(t, e.s, core.Environment{ID: "local", Type: "local"})
	gdb := e.b.gormOpen(t, e.dsn)
	s, err := gormstore.New(gdb, gormstore.Options{Now: e.clk.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if s.Gorm() == nil {
		t.Fatal("Gorm() = nil")
	}
	if _, err := s.GetEnvironment(ctx, "local"); err != nil {
		t.Errorf("GetEnvironment through New: %v", err)
	}
	mustSaveSession(t, s, core.SessionRecord{ID: "s1", Status: core.StatusActive})
	if _, err := e.s.GetSession(ctx, "s1"); err != nil {
		t.Errorf("GetSession through Open of a row saved through New: %v", err)
	}
	if err := s.CreateEnvironment(ctx, core.Environment{ID: "local"}); !errors.Is(err, core.ErrAlreadyExists) {
		t.Errorf("duplicate through New (no TranslateError): %v, want ErrAlreadyExists", err)
	}
	// Close leaves the caller's pool open.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		t.Errorf("caller's pool after Close of a New store: %v", err)
	}
}

func mustCreateEnv(t *testing.T, s *gormstore.DB, env core.Environment) {
	t.Helper()
	if err := s.CreateEnvironment(context.Background(), env); err != nil {
		t.Fatalf("CreateEnvironment(%s): %v", env.ID, err)
	}
}

func mustSaveSession(t *testing.T, s *gormstore.DB, rec core.SessionRecord) {
	t.Helper()
	if err := s.SaveSession(context.Background(), rec); err != nil {
		t.Fatalf("SaveSession(%s): %v", rec.ID, err)
	}
}

// assertSession checks the stored row of want.ID equals want.
func assertSession(t *testing.T, s *gormstore.DB, want core.SessionRecord) {
	t.Helper()
	got, err := s.GetSession(context.Background(), want.ID)
	if err != nil {
		t.Fatalf("GetSession(%s): %v", want.ID, err)
	}
	want.LastActiveAt = kept(want.LastActiveAt)
	if want.LastActiveAt.Equal(kept(time.Time{})) {
		want.LastActiveAt = time.Time{}
	}
	assertEqual(t, "GetSession("+want.ID+")", got, want)
}

func assertEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}
