package api

import (
	"context"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// A restart through the compatibility endpoint that takes longer than a
// ping interval (a slow DOCKER or SSH start) neither ends the session
// nor the connection: the read loop reads on (the pongs too) meanwhile.
func TestCompatRestartSlowSpawn(t *testing.T) {
	api := newAPI(t, Options{PingInterval: 300 * time.Millisecond}, nil)
	_, old := api.create(t, "r")
	c := compatAttached(t, api, "/ws/claude/r", "r", 1)
	go func() { // the browser: reads (and so answers pings)
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	old.Output(t, []byte("old\r\n"))
	api.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(1500 * time.Millisecond): // a docker/ssh start: several ping intervals
		}
		p := fakeenv.NewPTY(req)
		api.env.Add(p)
		return p, nil
	})
	compatSend(t, c, `{"type":"restart"}`)
	var rec core.SessionRecord
	eventually(t, "the restart", func() bool {
		rec, _ = api.m.GetSession(t.Context(), "r")
		return rec.Restarts == 1 || rec.Status != core.StatusActive
	})
	if rec.Status != core.StatusActive || rec.ActiveConnections != 1 {
		t.Errorf("after a slow restart: %s %q, %d connections; want ACTIVE, still attached", rec.Status, rec.StatusReason, rec.ActiveConnections)
	}
}
