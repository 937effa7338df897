package core

import (
	"errors"
	"strings"
	"testing"
)

// The recording of an id that never named a session is no recording, and
// the reason does not claim the session "is deleted": GET
// /api/v1/sessions/nosuch/recording said `no recording: session "nosuch"
// is deleted`.
func TestOpenRecordingOfUnknownSession(t *testing.T) {
	h, _ := recordingForeverHarness(t)
	rc, _, err := h.m.OpenRecording(t.Context(), "nosuch")
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, ErrNoRecording) {
		t.Fatalf("OpenRecording of an unknown session: %v, want ErrNoRecording", err)
	}
	if msg := err.Error(); strings.Contains(msg, "is deleted") || !strings.Contains(msg, `no session "nosuch"`) {
		t.Errorf("OpenRecording of an unknown session: %q, want it to say there is no session \"nosuch\"", msg)
	}
}
