package core

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// sample returns a value of type t (a field type of SessionUpdate's
// pointers) that is not t's zero value; seed tells two samples apart.
func sample(t *testing.T, typ reflect.Type, seed int) reflect.Value {
	t.Helper()
	v := reflect.New(typ).Elem()
	switch {
	case typ == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2024, 1, 2, 3, 4, 5+seed, 0, time.UTC)))
	case typ.Kind() == reflect.String:
		v.SetString("value" + string(rune('a'+seed)))
	case typ.Kind() == reflect.Int:
		v.SetInt(int64(7 + seed))
	case typ == reflect.TypeFor[[]string]():
		v.Set(reflect.ValueOf([]string{"value", string(rune('a' + seed))}))
	default:
		t.Fatalf("sample: no sample value for %v; teach the test the new field type", typ)
	}
	return v
}

// onlyField returns an update with only field i set, to a sample value.
func onlyField(t *testing.T, i, seed int) (SessionUpdate, reflect.Value) {
	var u SessionUpdate
	f := reflect.ValueOf(&u).Elem().Field(i)
	val := sample(t, f.Type().Elem(), seed)
	p := reflect.New(val.Type())
	p.Elem().Set(val)
	f.Set(p)
	return u, val
}

// TestSessionUpdateFields checks, field by field, that every field of
// SessionUpdate is a pointer, is applied by ApplyTo to the SessionRecord
// field of the same name and to no other, is carried by Merge, and is
// named by Fields. It fails when a field is added to SessionUpdate and
// ApplyTo does not handle it.
func TestSessionUpdateFields(t *testing.T) {
	ut := reflect.TypeFor[SessionUpdate]()
	rt := reflect.TypeFor[SessionRecord]()
	if ut.NumField() == 0 {
		t.Fatal("SessionUpdate has no fields")
	}
	for i := range ut.NumField() {
		sf := ut.Field(i)
		t.Run(sf.Name, func(t *testing.T) {
			if sf.Type.Kind() != reflect.Pointer {
				t.Fatalf("SessionUpdate.%s is a %v; every field must be a pointer (nil: leave alone)", sf.Name, sf.Type)
			}
			rf, ok := rt.FieldByName(sf.Name)
			if !ok {
				t.Fatalf("SessionUpdate.%s names no SessionRecord field", sf.Name)
			}
			u, val := onlyField(t, i, 0)

			// ApplyTo sets the record's field, and only it.
			var rec SessionRecord
			u.ApplyTo(&rec)
			got := reflect.ValueOf(rec).FieldByIndex(rf.Index)
			if got.Kind() == reflect.Pointer && rf.Type.Elem() == val.Type() {
				if got.IsNil() {
					t.Fatalf("ApplyTo left SessionRecord.%s nil", sf.Name)
				}
				got = got.Elem()
			}
			if !reflect.DeepEqual(got.Interface(), val.Interface()) {
				t.Errorf("after ApplyTo, SessionRecord.%s = %v, want %v: ApplyTo does not handle SessionUpdate.%s", sf.Name, got, val, sf.Name)
			}
			rv := reflect.ValueOf(rec)
			for j := range rt.NumField() {
				if rt.Field(j).Name != sf.Name && !rv.Field(j).IsZero() {
					t.Errorf("ApplyTo of SessionUpdate.%s also set SessionRecord.%s", sf.Name, rt.Field(j).Name)
				}
			}

			// Fields names it with SessionRecord's JSON name.
			want := recordFieldName(sf.Name)
			if want == "" || want == "-" {
				t.Fatalf("SessionRecord.%s has no JSON name", sf.Name)
			}
			if got := u.Fields(); !slices.Equal(got, []string{want}) {
				t.Errorf("Fields() = %q, want [%q]", got, want)
			}

			// Merge carries it over an unset field and over a set one, and
			// leaves it alone when the later update does not set it.
			var merged SessionUpdate
			merged.Merge(u)
			if !reflect.DeepEqual(merged, u) {
				t.Errorf("zero.Merge(u) = %+v, want %+v", merged, u)
			}
			older, _ := onlyField(t, i, 1)
			older.Merge(u)
			if !reflect.DeepEqual(older, u) {
				t.Errorf("older.Merge(u) = %+v, want %+v", older, u)
			}
			kept := u
			kept.Merge(SessionUpdate{})
			if !reflect.DeepEqual(kept, u) {
				t.Errorf("u.Merge(zero) = %+v, want %+v", kept, u)
			}
		})
	}
}

func TestSessionUpdateApplyTo(t *testing.T) {
	status, reason, signal := StatusTerminated, "exited", "SIGTERM"
	conns, cols, rows, code := 2, 100, 40, 3
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	full := SessionUpdate{
		Status: &status, StatusReason: &reason, ActiveConnections: &conns,
		Cols: &cols, Rows: &rows, ExitCode: &code, ExitSignal: &signal, LastActiveAt: &at,
	}
	base := SessionRecord{ID: "s1", EnvironmentID: "e1", ProjectID: "p", Status: StatusActive, Cols: 80, Rows: 24}

	tests := []struct {
		name string
		u    SessionUpdate
		want SessionRecord
	}{
		{"empty update changes nothing", SessionUpdate{}, base},
		{"status only", SessionUpdate{Status: &status}, func() SessionRecord {
			r := base
			r.Status = StatusTerminated
			return r
		}()},
		{"every field", full, SessionRecord{
			ID: "s1", EnvironmentID: "e1", ProjectID: "p", Status: StatusTerminated, StatusReason: "exited",
			ActiveConnections: 2, Cols: 100, Rows: 40, ExitCode: &code, ExitSignal: "SIGTERM", LastActiveAt: at,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := base
			tt.u.ApplyTo(&rec)
			if !reflect.DeepEqual(rec, tt.want) {
				t.Errorf("got %+v\nwant %+v", rec, tt.want)
			}
		})
	}

	// The record keeps no pointer into the update.
	var rec SessionRecord
	full.ApplyTo(&rec)
	code = 99
	if *rec.ExitCode != 3 {
		t.Errorf("ExitCode = %d after the update's int changed; want 3 (a copy)", *rec.ExitCode)
	}

	if got, want := full.Fields(), []string{
		"status", "status_reason", "active_connections", "cols", "rows", "exit_code", "exit_signal", "last_active_at",
	}; !slices.Equal(got, want) {
		t.Errorf("Fields() = %q, want %q", got, want)
	}
}
