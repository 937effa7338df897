package core

import (
	"reflect"
	"slices"
	"strings"
	"time"
)

// SessionUpdate changes some columns of a session's row; nil fields are left
// alone. Updates to one session are merged (later fields win) before they are
// written, so one update may stand for many.
//
// Each field bears the name of the SessionRecord field it sets. ApplyTo is
// the one place that says how a field changes a record; Merge and Fields
// follow the struct's fields, so a new field needs a line in ApplyTo and
// nothing more (update_test.go checks that).
type SessionUpdate struct {
	Status            *Status
	StatusReason      *string
	ActiveConnections *int
	Cols              *int
	Rows              *int
	ExitCode          *int
	ExitSignal        *string
	LastActiveAt      *time.Time
	// DetachedAt pointing at the zero time clears it (a client attached).
	DetachedAt *time.Time
	Restarts   *int
	// Command is set by a restart with a new command.
	Command *[]string
}

// ApplyTo sets the fields of rec that u sets. rec keeps no pointer into u.
func (u SessionUpdate) ApplyTo(rec *SessionRecord) {
	if u.Status != nil {
		rec.Status = *u.Status
	}
	if u.StatusReason != nil {
		rec.StatusReason = *u.StatusReason
	}
	if u.ActiveConnections != nil {
		rec.ActiveConnections = *u.ActiveConnections
	}
	if u.Cols != nil {
		rec.Cols = *u.Cols
	}
	if u.Rows != nil {
		rec.Rows = *u.Rows
	}
	if u.ExitCode != nil {
		code := *u.ExitCode
		rec.ExitCode = &code
	}
	if u.ExitSignal != nil {
		rec.ExitSignal = *u.ExitSignal
	}
	if u.LastActiveAt != nil {
		rec.LastActiveAt = *u.LastActiveAt
	}
	if u.DetachedAt != nil {
		rec.DetachedAt = *u.DetachedAt
	}
	if u.Restarts != nil {
		rec.Restarts = *u.Restarts
	}
	if u.Command != nil {
		rec.Command = slices.Clone(*u.Command)
	}
}

// Merge folds later into u: every field set in later overrides u's.
func (u *SessionUpdate) Merge(later SessionUpdate) {
	dst, src := reflect.ValueOf(u).Elem(), reflect.ValueOf(&later).Elem()
	for i := range src.NumField() {
		if f := src.Field(i); !f.IsNil() {
			dst.Field(i).Set(f)
		}
	}
}

// Fields returns the names of the fields u sets, in declaration order,
// spelled as SessionRecord's JSON names ("status", "exit_code", ...). The
// GORM store uses them as column names.
func (u SessionUpdate) Fields() []string {
	v := reflect.ValueOf(&u).Elem()
	var names []string
	for i := range v.NumField() {
		if !v.Field(i).IsNil() {
			names = append(names, recordFieldName(v.Type().Field(i).Name))
		}
	}
	return names
}

// recordFieldName returns the JSON name of SessionRecord's field called
// goName. A SessionUpdate field without a SessionRecord field of the same
// name is a programming error; update_test.go catches it.
func recordFieldName(goName string) string {
	f, ok := reflect.TypeFor[SessionRecord]().FieldByName(goName)
	if !ok {
		panic("core: SessionUpdate." + goName + " names no SessionRecord field")
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}
