package core

import (
	"context"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// Events come in the order they happen: a process that exits at once has
// its session_created published before its session_exited. (Without the
// order enforced, a run of 200 saw it broken once or twice.)
func TestEventOrderFastExit(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := h.m.Subscribe(ctx)
	h.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p := fakeenv.NewPTY(req)
		p.End(shared.ExitStatus{Code: 0})
		return p, nil
	})
	bad := 0
	for i := 0; i < 200; i++ {
		id := "s" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if _, err := h.m.CreateSession(context.Background(), CreateOptions{ID: id, EnvironmentID: "fake"}); err != nil {
			t.Fatal(err)
		}
		var got []EventType
		for len(got) < 2 {
			select {
			case e := <-evs:
				got = append(got, e.Type)
			case <-time.After(2 * time.Second):
				t.Fatalf("events %v", got)
			}
		}
		if got[0] != SessionCreated {
			bad++
			if bad == 1 {
				t.Logf("session %s: events in order %v", id, got)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of 200 sessions: exited published before created", bad)
	}
}
