package core

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// lockedRowStore is a memStore one of whose rows is locked by another
// transaction: updates of it wait until released (or their context ends).
type lockedRowStore struct {
	*memStore
	locked  string
	started chan struct{}
	release chan struct{}
}

func (s lockedRowStore) UpdateSession(ctx context.Context, id string, u SessionUpdate) error {
	if id == s.locked {
		s.started <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.memStore.UpdateSession(ctx, id, u)
}

func newLockedRowWriter(t *testing.T, rows ...string) (*writer, lockedRowStore) {
	t.Helper()
	store := lockedRowStore{memStore: newMemStore(), locked: "locked", started: make(chan struct{}, 1), release: make(chan struct{})}
	for _, id := range append(rows, "locked") {
		if err := store.memStore.SaveSession(t.Context(), SessionRecord{ID: id, Status: StatusActive}); err != nil {
			t.Fatal(err)
		}
	}
	return newWriter(store, slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics()), store
}

// A create's first save does not wait behind a batch held up by a row
// that another transaction keeps locked: it lands within the create's
// store timeout, and the held write lands once the row is free.
func TestSaveDoesNotWaitBehindALockedRow(t *testing.T) {
	w, store := newLockedRowWriter(t)
	reason := "held"
	w.update("locked", SessionUpdate{StatusReason: &reason})
	batch := make(chan error, 1)
	go func() { batch <- w.writeBatch(context.Background()) }()
	<-store.started

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if err := w.saveNow(ctx, SessionRecord{ID: "new", Status: StatusStarting}); err != nil {
		t.Fatalf("save of a new row behind a locked one: %v", err)
	}
	if rec, err := store.GetSession(t.Context(), "new"); err != nil || rec.Status != StatusStarting {
		t.Errorf("new row: %+v, %v", rec, err)
	}
	close(store.release)
	if err := <-batch; err != nil {
		t.Fatal(err)
	}
	if rec, _ := store.GetSession(t.Context(), "locked"); rec.StatusReason != reason {
		t.Errorf("held write: reason %q, want %q", rec.StatusReason, reason)
	}
}

// A save of a row replaces a write to it still queued in a batch held up
// by another row: the batch does not write the older update over the new
// row afterwards, and the update's callbacks run once.
func TestSaveReplacesAQueuedWriteOfItsRow(t *testing.T) {
	// The batch writes its rows in map order: "x" comes after the locked
	// row in about half the rounds, the case in question.
	for round := range 16 {
		w, store := newLockedRowWriter(t, "x")
		reason := "held"
		w.update("locked", SessionUpdate{StatusReason: &reason})
		stale := "stale"
		calls := 0
		w.updateThen("x", SessionUpdate{StatusReason: &stale}, func() { calls++ })
		batch := make(chan error, 1)
		go func() { batch <- w.writeBatch(context.Background()) }()
		<-store.started

		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		err := w.saveNow(ctx, SessionRecord{ID: "x", Status: StatusStarting})
		cancel()
		if err != nil {
			t.Fatalf("round %d: save: %v", round, err)
		}
		close(store.release)
		if err := <-batch; err != nil {
			t.Fatal(err)
		}
		if rec, _ := store.GetSession(t.Context(), "x"); rec.StatusReason != "" || rec.Status != StatusStarting {
			t.Fatalf("round %d: row after the save and the batch: %+v, want the saved row", round, rec)
		}
		if calls != 1 {
			t.Fatalf("round %d: the replaced update's callback ran %d times, want 1", round, calls)
		}
	}
}
