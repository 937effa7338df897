package core

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// A recording whose session's row is gone (another node's prune deleted
// it) and which is no longer in the map is no recording: OpenRecording
// refuses it and removes the file at once, without waiting for the next
// sweep. A session still in the map keeps serving its recording.
func TestOpenRecordingOfDeletedSession(t *testing.T) {
	h, cast := recordingForeverHarness(t)
	deleteRow := func(id string) {
		h.store.mu.Lock()
		delete(h.store.sessions, id)
		h.store.mu.Unlock()
	}
	h.create(t, "pruned")
	h.create(t, "live")
	if err := h.m.DestroySession(t.Context(), "pruned"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the ended session to leave the map", func() bool { return !h.m.isLive("pruned") })
	// The end is written behind: a prune deletes only an ended row.
	eventually(t, "the ended row to be TERMINATED", func() bool {
		rec, err := h.store.GetSession(t.Context(), "pruned")
		return err == nil && rec.Status == StatusTerminated
	})

	rc, _, err := h.m.OpenRecording(t.Context(), "pruned")
	if err != nil {
		t.Fatalf("OpenRecording of an ended session with its row: %v", err)
	}
	rc.Close()

	deleteRow("pruned")
	if rc, _, err := h.m.OpenRecording(t.Context(), "pruned"); !errors.Is(err, ErrNoRecording) {
		if err == nil {
			rc.Close()
		}
		t.Fatalf("OpenRecording of a session whose row is deleted: %v, want ErrNoRecording", err)
	}
	if _, err := os.Stat(cast("pruned")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the recording of a deleted session is still there: %v", err)
	}

	// A session in the map is this node's whatever the store says.
	deleteRow("live")
	rc, _, err = h.m.OpenRecording(t.Context(), "live")
	if err != nil {
		t.Fatalf("OpenRecording of a live session: %v", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !strings.HasPrefix(string(b), `{"version":2,`) {
		t.Errorf("the live session's recording: %q, %v", b, err)
	}
}
