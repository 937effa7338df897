package core

import (
	"context"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// holdingPTY holds the resize to hold after the terminal took it, until
// release is closed, as a plugin slow to answer does.
type holdingPTY struct {
	*fakeenv.PTY
	hold    shared.Size
	held    chan struct{} // closed when the held size reached the terminal
	release chan struct{}
}

func (p *holdingPTY) Resize(ctx context.Context, s shared.Size) error {
	if err := p.PTY.Resize(ctx, s); err != nil {
		return err
	}
	if s == p.hold {
		close(p.held)
		<-p.release
	}
	return nil
}

// TestResizesRecordTheTerminalsLastSize: of two resizes at once, the one
// the terminal got last is the size recorded, in the session and in the
// store, even when the first one's answer is slow. Before, the second
// overtook it and the first was recorded last, over the terminal's real
// size, which followClients then took as already set.
func TestResizesRecordTheTerminalsLastSize(t *testing.T) {
	h := newHarness(t, nil)
	first, second := shared.Size{Cols: 100, Rows: 30}, shared.Size{Cols: 120, Rows: 40}
	p := &holdingPTY{hold: first, held: make(chan struct{}), release: make(chan struct{})}
	h.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p.PTY = fakeenv.NewPTY(req)
		h.env.Add(p.PTY)
		return p, nil
	})
	h.create(t, "ro")
	h.m.mu.Lock()
	s := h.m.sessions["ro"]
	h.m.mu.Unlock()

	errs := make(chan error, 2)
	go func() { errs <- s.resize(t.Context(), first) }()
	<-p.held
	go func() { errs <- s.resize(t.Context(), second) }()
	// The second may overtake the first here, if nothing stops it.
	select {
	case err := <-errs:
		errs <- err
	case <-time.After(100 * time.Millisecond):
	}
	close(p.release)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("resize: %v", err)
		}
	}
	var last shared.Size
	for len(p.Resizes()) > 0 {
		last = <-p.Resizes()
	}
	if last != second {
		t.Fatalf("the terminal got %+v last, want %+v", last, second)
	}
	s.mu.Lock()
	cols, rows := s.rec.Cols, s.rec.Rows
	s.mu.Unlock()
	if cols != int(second.Cols) || rows != int(second.Rows) {
		t.Errorf("the session records %dx%d, but the terminal is %+v", cols, rows, second)
	}
	eventually(t, "the store to record the terminal's size", func() bool {
		rec := h.store.row(t, "ro")
		return rec.Cols == int(second.Cols) && rec.Rows == int(second.Rows)
	})
}
