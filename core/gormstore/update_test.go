package gormstore_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
)

// testUpdateSessionEachField writes an update of each SessionUpdate field
// alone and reads the row back: the field's column, and no other but
// updated_at, holds what ApplyTo puts in a record. A field added to
// SessionUpdate whose name is not a column fails here.
func testUpdateSessionEachField(t *testing.T, e env) {
	ctx := context.Background()
	t0 := e.clk.Advance(time.Second)
	rec := core.SessionRecord{
		ID: "s1", EnvironmentID: "local", ProjectID: "p", BranchName: "main", WorktreePath: "/w",
		Status: core.StatusActive, StatusReason: "started", ActiveConnections: 1, Cols: 80, Rows: 24,
		ExitCode: ptr(1), ExitSignal: "SIGHUP", LastActiveAt: t0,
		IdleTimeout: "1h0m0s", DetachedAt: t0,
		Command: []string{"/bin/sh", "-c", "echo 'a b'"}, UnsetEnv: []string{"CLAUDECODE"},
		MaxClients: 3, SizePolicy: core.SizeSmallest,
	}
	mustSaveSession(t, e.s, rec)
	rec.CreatedAt, rec.UpdatedAt = t0, t0

	ut := reflect.TypeFor[core.SessionUpdate]()
	for i := range ut.NumField() {
		var u core.SessionUpdate
		f := reflect.ValueOf(&u).Elem().Field(i)
		v := reflect.New(f.Type().Elem())
		switch elem := v.Elem(); {
		case elem.Type() == reflect.TypeFor[time.Time]():
			elem.Set(reflect.ValueOf(time.Date(2025, 6, 1, 12, 0, i, 1500, time.UTC)))
		case elem.Kind() == reflect.String:
			elem.SetString("changed")
		case elem.Kind() == reflect.Int:
			elem.SetInt(int64(100 + i))
		case elem.Type() == reflect.TypeFor[[]string]():
			elem.Set(reflect.ValueOf([]string{"changed", "", "a b"}))
		default:
			t.Fatalf("SessionUpdate.%s: no sample value for %v; teach the test the new field type", ut.Field(i).Name, elem.Type())
		}
		f.Set(v)

		now := e.clk.Advance(time.Second)
		if err := e.s.UpdateSession(ctx, "s1", u); err != nil {
			t.Fatalf("%s: UpdateSession: %v", ut.Field(i).Name, err)
		}
		u.ApplyTo(&rec)
		rec.LastActiveAt = kept(rec.LastActiveAt)
		rec.DetachedAt = kept(rec.DetachedAt)
		rec.UpdatedAt = now
		got, err := e.s.GetSession(ctx, "s1")
		if err != nil {
			t.Fatalf("%s: GetSession: %v", ut.Field(i).Name, err)
		}
		assertEqual(t, ut.Field(i).Name, got, rec)
	}

	// A LastActiveAt at the zero time clears the column.
	now := e.clk.Advance(time.Second)
	if err := e.s.UpdateSession(ctx, "s1", core.SessionUpdate{LastActiveAt: &time.Time{}}); err != nil {
		t.Fatalf("clear LastActiveAt: UpdateSession: %v", err)
	}
	rec.LastActiveAt, rec.UpdatedAt = time.Time{}, now
	got, err := e.s.GetSession(ctx, "s1")
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	assertEqual(t, "zero LastActiveAt", got, rec)

	// So does a DetachedAt at the zero time (a client attached).
	now = e.clk.Advance(time.Second)
	if err := e.s.UpdateSession(ctx, "s1", core.SessionUpdate{DetachedAt: &time.Time{}}); err != nil {
		t.Fatalf("clear DetachedAt: UpdateSession: %v", err)
	}
	rec.DetachedAt, rec.UpdatedAt = time.Time{}, now
	got, err = e.s.GetSession(ctx, "s1")
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	assertEqual(t, "zero DetachedAt", got, rec)
}
