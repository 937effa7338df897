package core

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// PurgeEnded and PruneEnded remove the recordings of the sessions whose
// rows they delete, and of rows deleted earlier (a stray file), and keep
// those of the sessions that still have a row, and files that are not
// recordings.
func TestDeletedSessionsLoseTheirRecordings(t *testing.T) {
	tests := []struct {
		name   string
		delete func(h *harness, advance func(time.Duration)) (int, error)
	}{
		{"retention", func(h *harness, advance func(time.Duration)) (int, error) {
			advance(2 * time.Hour)
			return h.m.PurgeEnded(context.Background())
		}},
		{"prune", func(h *harness, _ func(time.Duration)) (int, error) {
			return h.m.PruneEnded(context.Background())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
			dir := t.TempDir()
			h := newHarness(t, func(o *Options) {
				o.Now = clock
				o.Retention = time.Hour
				o.Linger = time.Millisecond
				o.RecordingDir = dir
				o.Record = true
			})
			cast := func(id string) string { return filepath.Join(dir, id+".cast") }
			h.create(t, "ended")
			h.create(t, "live")
			for _, f := range []string{cast("stray"), filepath.Join(dir, "notes.txt")} {
				if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, id := range []string{"ended", "live"} {
				if _, err := os.Stat(cast(id)); err != nil {
					t.Fatalf("no recording of %s: %v", id, err)
				}
			}
			if err := h.m.DestroySession(t.Context(), "ended"); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the ended row to be TERMINATED", func() bool {
				rec, err := h.store.GetSession(t.Context(), "ended")
				return err == nil && rec.Status == StatusTerminated
			})

			n, err := tt.delete(h, advance)
			if err != nil || n != 1 {
				t.Fatalf("deleted %d rows, %v; want 1", n, err)
			}
			// A session still lingering in memory keeps its file until
			// the next round.
			eventually(t, "the deleted session's recording to be removed", func() bool {
				if _, err := h.m.PruneEnded(t.Context()); err != nil {
					t.Fatal(err)
				}
				_, err := os.Stat(cast("ended"))
				return errors.Is(err, os.ErrNotExist)
			})
			if _, err := os.Stat(cast("stray")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the recording of a row deleted earlier is still there: %v", err)
			}
			for _, f := range []string{cast("live"), filepath.Join(dir, "notes.txt")} {
				if _, err := os.Stat(f); err != nil {
					t.Errorf("%s was removed: %v", filepath.Base(f), err)
				}
			}
		})
	}
}

// A recording whose row is gone but whose session is in the manager's map
// (created again under the id, say) is kept.
func TestRecordingOfSessionInMapIsKept(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, func(o *Options) { o.RecordingDir = dir; o.Record = true })
	h.create(t, "again")
	h.store.mu.Lock()
	delete(h.store.sessions, "again") // as if a purge raced with the create
	h.store.mu.Unlock()
	if _, err := h.m.PruneEnded(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "again.cast")); err != nil {
		t.Errorf("the recording of a session in the map was removed: %v", err)
	}
}

// With KeepForever, PurgeEnded deletes no row but still removes the
// recordings whose rows are gone (in a cluster, another node's prune
// deletes this node's rows), and keeps the others.
func TestPurgeEndedForeverRemovesOrphanRecordings(t *testing.T) {
	h, cast := recordingForeverHarness(t)
	h.create(t, "ended")
	if err := h.m.DestroySession(t.Context(), "ended"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ended row to be TERMINATED", func() bool {
		rec, err := h.store.GetSession(t.Context(), "ended")
		return err == nil && rec.Status == StatusTerminated
	})
	// The recording of a session whose row another node deleted.
	if err := os.WriteFile(cast("pruned"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	n, err := h.m.PurgeEnded(t.Context())
	if err != nil || n != 0 {
		t.Fatalf("PurgeEnded: deleted %d rows, %v; want 0 with KeepForever", n, err)
	}
	if _, err := os.Stat(cast("pruned")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the recording of a deleted row is still there: %v", err)
	}
	if _, err := os.Stat(cast("ended")); err != nil {
		t.Errorf("the recording of a kept row was removed: %v", err)
	}
	if _, err := h.store.GetSession(t.Context(), "ended"); err != nil {
		t.Errorf("the ended row was deleted with KeepForever: %v", err)
	}
}

func TestRetentionInterval(t *testing.T) {
	tests := []struct {
		name      string
		retention time.Duration
		want      time.Duration
	}{
		{"forever sweeps recordings hourly", KeepForever, time.Hour},
		{"short", time.Second, time.Second},
		{"half the period", 10 * time.Minute, 5 * time.Minute},
		{"at least hourly", 7 * 24 * time.Hour, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retentionInterval(tt.retention); got != tt.want {
				t.Errorf("retentionInterval(%v) = %v, want %v", tt.retention, got, tt.want)
			}
		})
	}
}

// With KeepForever the manager still sweeps, at start and then hourly,
// the recordings whose rows are gone.
func TestForeverSweepsRecordingsAtStart(t *testing.T) {
	dir := t.TempDir()
	stray := filepath.Join(dir, "pruned.cast")
	if err := os.WriteFile(stray, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	newHarness(t, func(o *Options) { o.Retention = KeepForever; o.RecordingDir = dir })
	eventually(t, "the recording of a deleted row to be removed", func() bool {
		_, err := os.Stat(stray)
		return errors.Is(err, os.ErrNotExist)
	})
}

// recordingForeverHarness is a harness that records every session into a
// directory of the test's and keeps rows forever, its exited sessions
// lingering a millisecond; cast names a session's recording there.
func recordingForeverHarness(t *testing.T) (h *harness, cast func(id string) string) {
	dir := t.TempDir()
	h = newHarness(t, func(o *Options) {
		o.Retention = KeepForever
		o.Linger = time.Millisecond
		o.RecordingDir = dir
		o.Record = true
	})
	return h, func(id string) string { return filepath.Join(dir, id+".cast") }
}
