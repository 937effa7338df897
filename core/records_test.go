package core

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// A session destroyed while its plugin starts it is recorded as ended, not
// left STARTING, even by a plugin that does not watch the spawn's context
// and answers with a PTY after the destroy, which is killed.
func TestDestroyedWhileStartingIsRecorded(t *testing.T) {
	h := newHarness(t, nil)
	events := h.m.Subscribe(t.Context())
	release := make(chan struct{})
	spawning := make(chan struct{})
	h.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		close(spawning)
		<-release
		p := fakeenv.NewPTY(req)
		h.env.Add(p)
		return p, nil
	})
	done := make(chan error, 1)
	go func() {
		_, err := h.m.CreateSession(context.Background(), CreateOptions{ID: "racy", EnvironmentID: "fake"})
		done <- err
	}()
	<-spawning
	// DestroySession waits for the create, which waits for the spawn.
	destroyed := make(chan error, 1)
	go func() { destroyed <- h.m.DestroySession(context.Background(), "racy") }()
	eventually(t, "racy to be taken out of the map", func() bool { return !h.m.isLive("racy") })
	close(release)
	if err := <-destroyed; err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Fatal("create of a session destroyed while starting succeeded")
	}
	if kills, closes := h.env.Last(t).Counts(); kills == 0 || closes != 1 {
		t.Errorf("the PTY spawned after the destroy: %d kills, %d closes; want it killed and closed", kills, closes)
	}
	eventually(t, "the row to be TERMINATED", func() bool {
		rec, err := h.store.GetSession(context.Background(), "racy")
		return err == nil && rec.Status == StatusTerminated
	})
	// A client following the events saw it listed STARTING: it is told.
	select {
	case ev := <-events:
		if ev.Type != SessionDestroyed || ev.SessionID != "racy" {
			t.Errorf("event %+v, want session_destroyed of racy", ev)
		}
	case <-time.After(5 * time.Second):
		t.Error("no event for the session destroyed while starting")
	}
}

// PurgeEnded deletes the rows of sessions that ended longer than the
// retention ago, and no others.
func TestPurgeEnded(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	h := newHarness(t, func(o *Options) {
		o.Now = clock
		o.Retention = time.Hour
		o.Linger = time.Millisecond
	})
	_, p := h.create(t, "old-exit")
	h.create(t, "old-destroyed")
	h.create(t, "old-live")
	p.End(shared.ExitStatus{Code: 0})
	if err := h.m.DestroySession(t.Context(), "old-destroyed"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "old-exit to be recorded", func() bool {
		rec, err := h.store.GetSession(t.Context(), "old-exit")
		return err == nil && rec.Status == StatusTerminated
	})
	advance(2 * time.Hour)
	h.create(t, "new-destroyed")
	if err := h.m.DestroySession(t.Context(), "new-destroyed"); err != nil {
		t.Fatal(err)
	}

	n, err := h.m.PurgeEnded(t.Context())
	if err != nil || n != 2 {
		t.Fatalf("PurgeEnded = %d, %v; want 2 rows", n, err)
	}
	recs, err := h.store.ListSessions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, r := range recs {
		left = append(left, r.ID)
	}
	if fmt.Sprint(left) != "[old-live new-destroyed]" {
		t.Errorf("rows left: %v", left)
	}
}

// The manager purges by itself, and KeepForever keeps every row.
func TestRetentionRunsPeriodically(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Retention = time.Millisecond })
	h.create(t, "gone")
	if err := h.m.DestroySession(t.Context(), "gone"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := h.store.GetSession(t.Context(), "gone"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the ended session's row was never purged")
		}
		time.Sleep(20 * time.Millisecond)
	}

	keep := newHarness(t, func(o *Options) { o.Retention = KeepForever })
	keep.create(t, "kept")
	if err := keep.m.DestroySession(t.Context(), "kept"); err != nil {
		t.Fatal(err)
	}
	if n, err := keep.m.PurgeEnded(t.Context()); n != 0 || err != nil {
		t.Errorf("PurgeEnded with KeepForever = %d, %v", n, err)
	}
	keep.store.row(t, "kept")
}

// An update to a row that retention deleted is dropped, not retried
// forever.
func TestWriterDropsUpdatesOfDeletedRows(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "gone")
	h.store.mu.Lock()
	delete(h.store.sessions, "gone")
	h.store.mu.Unlock()
	zero := 0
	h.m.writer.update("gone", SessionUpdate{ActiveConnections: &zero})
	if err := h.m.writer.flush(t.Context()); err != nil {
		t.Fatalf("flush: %v", err)
	}
	h.m.writer.mu.Lock()
	n := len(h.m.writer.pending)
	h.m.writer.mu.Unlock()
	if n != 0 {
		t.Errorf("%d writes still pending", n)
	}
}

// An attach racing the process's exit: the exit's TERMINATED is recorded
// last whichever comes first, never overwritten by the attach's ACTIVE.
func TestAttachRacingExitRecordsTheExit(t *testing.T) {
	h := newHarness(t, nil)
	const n = 300
	bad := 0
	for i := range n {
		id := fmt.Sprintf("s%d", i)
		_, p := h.create(t, id)
		var wg sync.WaitGroup
		var a *Attachment
		wg.Go(func() { a, _ = h.m.Attach(context.Background(), id) })
		wg.Go(func() { p.End(shared.ExitStatus{Code: 0}) })
		wg.Wait()
		eventually(t, "the exit", func() bool {
			h.m.mu.Lock()
			s := h.m.sessions[id]
			h.m.mu.Unlock()
			return s == nil || s.hasExited()
		})
		if a != nil {
			a.Close()
		}
		if err := h.m.writer.flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if row := h.store.row(t, id); row.Status != StatusTerminated {
			if bad++; bad == 1 {
				t.Errorf("%s exited, recorded as %s with %d connections", id, row.Status, row.ActiveConnections)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d exited sessions not recorded as TERMINATED", bad, n)
	}
}

// gatedReadStore holds up one session read, after it has read the row,
// until gate closes: the window in which a write lands after the read.
type gatedReadStore struct {
	*memStore
	once   sync.Once
	looked chan struct{}
	gate   chan struct{}
	armed  atomic.Bool
}

func (s *gatedReadStore) GetSession(ctx context.Context, id string) (SessionRecord, error) {
	rec, err := s.memStore.GetSession(ctx, id)
	if s.armed.Load() {
		s.once.Do(func() {
			close(s.looked)
			<-s.gate
		})
	}
	return rec, err
}

// A write still to be made when GetSession reads the row, and made while
// the row is on its way back, is in the record it returns: neither the row
// read nor the writer's queue has it by then.
func TestGetSessionSeesAWriteMadeDuringTheRead(t *testing.T) {
	var st *gatedReadStore
	h := newHarness(t, func(o *Options) {
		st = &gatedReadStore{memStore: o.Store.(*memStore), looked: make(chan struct{}), gate: make(chan struct{})}
		o.Store = st
	})
	h.create(t, "x")
	if err := h.m.DestroySession(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	// Held, so that the update is still queued when GetSession starts.
	if err := h.m.writer.lockBatches(t.Context()); err != nil {
		t.Fatal(err)
	}
	reason := "written during the read"
	h.m.writer.update("x", SessionUpdate{StatusReason: &reason})
	st.armed.Store(true)
	got := make(chan SessionRecord, 1)
	go func() {
		rec, err := h.m.GetSession(context.Background(), "x")
		if err != nil {
			t.Error(err)
		}
		got <- rec
	}()
	<-st.looked
	h.m.writer.unlockBatches()
	if err := h.m.writer.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	close(st.gate)
	if rec := <-got; rec.StatusReason != reason {
		t.Errorf("GetSession: reason %q, want %q", rec.StatusReason, reason)
	}
}
