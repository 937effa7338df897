package core

import (
	"errors"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// TestQuerySessionsOutage: while the store is down, a listing that allows
// it is the page of the sessions in memory, filtered and paged as asked,
// saying it is partial; without AllowPartial, the error it was.
func TestQuerySessionsOutage(t *testing.T) {
	st := &outageStore{Store: newMemStore()}
	h := newHarness(t, func(o *Options) {
		st.Store.(*memStore).envs["fake"] = Environment{ID: "fake", Name: "fake", Type: "FAKE"}
		o.Store = st
	})
	ctx := t.Context()
	// Only the store knows old, which ended before this server started.
	then := time.Now().Add(-time.Hour).UTC().Truncate(time.Microsecond)
	if err := st.SaveSession(ctx, SessionRecord{ID: "old", EnvironmentID: "fake", Status: StatusTerminated, CreatedAt: then, UpdatedAt: then}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		h.create(t, id)
	}
	_, p := h.create(t, "ended") // ended here, and lingers
	p.End(shared.ExitStatus{Code: 3})
	eventually(t, "ended to end", func() bool {
		rec, err := h.m.GetSession(ctx, "ended")
		return err == nil && rec.Status == StatusTerminated
	})
	running, err := h.m.GetSession(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}

	st.down.Store(true)
	t.Cleanup(func() { st.down.Store(false) }) // before the harness's Close
	if page, err := h.m.QuerySessions(ctx, ListOptions{}); !errors.Is(err, ErrStoreUnavailable) {
		t.Errorf("QuerySessions without AllowPartial during the outage: %v, %v; want ErrStoreUnavailable", idsOf(page.Sessions), err)
	}
	for _, c := range []struct {
		name string
		o    ListOptions
		want string
	}{
		{"all", ListOptions{}, "a b ended"},
		{"running status", ListOptions{Statuses: []Status{running.Status}}, "a b"},
		{"ended status", ListOptions{Statuses: []Status{StatusTerminated}}, "ended"},
		{"environment", ListOptions{EnvironmentID: "fake"}, "a b ended"},
		{"other environment", ListOptions{EnvironmentID: "nope"}, ""},
	} {
		c.o.AllowPartial = true
		page, err := h.m.QuerySessions(ctx, c.o)
		if err != nil || !errors.Is(page.Partial, ErrStoreUnavailable) || !errors.Is(page.Partial, errDatabaseDown) {
			t.Errorf("%s: Partial %v, err %v; want the store's failure in Partial, and no error", c.name, page.Partial, err)
		}
		if got := joinIDs(idsOf(page.Sessions)); got != c.want || page.NextCursor != "" {
			t.Errorf("%s: %q, next cursor %q; want %q, the last page", c.name, got, page.NextCursor, c.want)
		}
	}
	// A page at a time, by the cursors of the pages in memory.
	var ids []string
	o := ListOptions{Limit: 2, AllowPartial: true}
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		page, err := h.m.QuerySessions(ctx, o)
		if err != nil || page.Partial == nil {
			t.Fatalf("page %d: Partial %v, err %v", pages, page.Partial, err)
		}
		ids = append(ids, idsOf(page.Sessions)...)
		if page.NextCursor == "" {
			break
		}
		o.Cursor = page.NextCursor
	}
	if got := joinIDs(ids); got != "a b ended" {
		t.Errorf("pages during the outage hold %q, want a b ended", got)
	}

	st.down.Store(false)
	page, err := h.m.QuerySessions(ctx, ListOptions{AllowPartial: true})
	if err != nil || page.Partial != nil || joinIDs(idsOf(page.Sessions)) != "old a b ended" {
		t.Errorf("after the outage: %v, Partial %v, err %v; want old a b ended, whole", idsOf(page.Sessions), page.Partial, err)
	}
}
