package core

import (
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// A session's updated_at, read from its server's memory, is when its
// record last changed, as the store's row says once written: the create,
// then a client's attach, then the exit (for an ended session, when it
// ended, which retention goes by). It was the create's time for as long
// as the session ran and lingered.
func TestUpdatedAtFollowsChanges(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(d); return now }
	h := newHarness(t, func(o *Options) { o.Now = clock })
	created := clock().Truncate(time.Microsecond)
	rec, p := h.create(t, "s1")
	if !rec.UpdatedAt.Equal(created) {
		t.Errorf("the create's answer: updated_at %v, want %v", rec.UpdatedAt, created)
	}

	attached := advance(time.Minute).Truncate(time.Microsecond)
	h.attach(t, "s1")
	if rec, err := h.m.GetSession(t.Context(), "s1"); err != nil || !rec.UpdatedAt.Equal(attached) {
		t.Errorf("after an attach: updated_at %v (%v), want %v", rec.UpdatedAt, err, attached)
	}

	ended := advance(time.Minute).Truncate(time.Microsecond)
	p.End(shared.ExitStatus{Code: 0})
	eventually(t, "s1 to end", func() bool {
		rec, err := h.m.GetSession(t.Context(), "s1")
		return err == nil && rec.Status == StatusTerminated
	})
	if rec, err := h.m.GetSession(t.Context(), "s1"); err != nil || !rec.UpdatedAt.Equal(ended) {
		t.Errorf("after the exit: updated_at %v (%v), want %v", rec.UpdatedAt, err, ended)
	}
}
