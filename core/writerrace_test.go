package core

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"
)

// blockingSaveStore is a memStore whose session saves wait to be
// released, as one behind a slow database does.
type blockingSaveStore struct {
	*memStore
	started, release chan struct{}
}

func (s blockingSaveStore) SaveSession(ctx context.Context, rec SessionRecord) error {
	s.started <- struct{}{}
	<-s.release
	return s.memStore.SaveSession(ctx, rec)
}

// A flush cut short while a save holds the row of a write it has in flight:
// whichever comes first, the write is either replaced by the save (its
// callback run by the save) or put back to be written later, never both:
// the stale update never lands over the saved row, and its callback runs
// once. (Found by a review with a hook between the flush's look at its
// write and its putting the write back, which were two critical sections.)
func TestFlushCutShortWhileASaveReplacesItsWrite(t *testing.T) {
	for round := range 500 {
		ms := newMemStore()
		if err := ms.SaveSession(t.Context(), SessionRecord{ID: "x", Status: StatusTerminated}); err != nil {
			t.Fatal(err)
		}
		store := blockingSaveStore{memStore: ms, started: make(chan struct{}, 1), release: make(chan struct{})}
		w := newWriter(store, slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics())
		stale := "the old session's end"
		var calls atomic.Int32
		w.updateThen("x", SessionUpdate{StatusReason: &stale}, func() { calls.Add(1) })
		saved := make(chan error, 1)
		go func() { saved <- w.saveNow(context.Background(), SessionRecord{ID: "x", Status: StatusStarting}) }()
		<-store.started
		ctx, cancel := context.WithCancel(context.Background())
		flushed := make(chan error, 1)
		go func() { flushed <- w.flush(ctx) }()
		time.Sleep(time.Duration(round%5) * 50 * time.Microsecond)
		go cancel()
		close(store.release)
		if err := <-saved; err != nil {
			t.Fatal(err)
		}
		<-flushed
		if err := w.flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		rec, _ := ms.GetSession(t.Context(), "x")
		if rec.Status != StatusStarting || rec.StatusReason != "" || calls.Load() != 1 {
			t.Fatalf("round %d: row %s %q, callback ran %d times; want the saved row and one call", round, rec.Status, rec.StatusReason, calls.Load())
		}
	}
}

// GetSession captures what is still to be written for an id, reads the
// row, then applies what it captured: an update of the id's ended session,
// captured before a create of the id saved its new row, is not applied
// over the new row the read returns. (Found by a review.)
func TestCaptureSkipsAnUpdateASaveReplaced(t *testing.T) {
	ms := newMemStore()
	if err := ms.SaveSession(t.Context(), SessionRecord{ID: "x", Status: StatusActive}); err != nil {
		t.Fatal(err)
	}
	w := newWriter(ms, slog.New(slog.NewTextHandler(io.Discard, nil)), newMetrics())
	ended, code := StatusTerminated, 3
	w.update("x", SessionUpdate{Status: &ended, ExitCode: &code}) // the old session's end
	held := w.capture("x")
	if err := w.saveNow(t.Context(), SessionRecord{ID: "x", Status: StatusStarting}); err != nil {
		t.Fatal(err)
	}
	rec, err := ms.GetSession(t.Context(), "x")
	if err != nil {
		t.Fatal(err)
	}
	held(&rec)
	w.overlay(&rec)
	if rec.Status != StatusStarting || rec.ExitCode != nil {
		t.Errorf("the record read after the save: %s, exit code %v; want the new STARTING row", rec.Status, rec.ExitCode)
	}

	// Without a save, what was captured is applied.
	w.update("x", SessionUpdate{Status: &ended, ExitCode: &code})
	held = w.capture("x")
	if err := w.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec = SessionRecord{ID: "x", Status: StatusStarting}
	held(&rec)
	if rec.Status != StatusTerminated {
		t.Errorf("captured without a save since: %s, want TERMINATED applied", rec.Status)
	}
}
