package core

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

// stallingStore is a memStore whose session updates wait for their
// context to end, as a write in flight when the server stops does.
type stallingStore struct {
	*memStore
	started chan struct{}
}

func (s stallingStore) UpdateSession(ctx context.Context, id string, u SessionUpdate) error {
	s.started <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// A write that the writer's stop cuts short is not a store failure: it is
// neither logged as one nor counted, and it stays pending for the final
// flush.
func TestWriteCutShortByTheStop(t *testing.T) {
	var logs bytes.Buffer
	store := stallingStore{memStore: newMemStore(), started: make(chan struct{}, 1)}
	w := newWriter(store, slog.New(slog.NewTextHandler(&logs, nil)), newMetrics())
	ctx, cancel := context.WithCancel(t.Context())
	code := 3
	w.update("s", SessionUpdate{ExitCode: &code})
	done := make(chan error, 1)
	go func() { done <- w.writeBatch(ctx) }()
	<-store.started
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the cut-short write reported success")
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("logged: %s", logs.String())
	}
	if p := w.pending["s"]; p == nil || p.upd.ExitCode == nil || *p.upd.ExitCode != 3 {
		t.Errorf("pending after the stop: %+v, want the exit code still to be written", p)
	}
}
