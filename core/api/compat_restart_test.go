package api

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/e2etest"
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

// A flood of restart messages while one restart is under way: each is
// refused with "in progress", none is an error in the server's log (one
// client could fill it), and the plugin is asked for one start only.
func TestCompatRestartFlood(t *testing.T) {
	var logs e2etest.Buffer
	api := newAPI(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	api.create(t, "r")
	c := compatAttached(t, api, "/ws/claude/r", "r", 1)
	var spawns atomic.Int32
	api.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		spawns.Add(1)
		<-ctx.Done() // a start that takes the whole test
		return nil, ctx.Err()
	})
	compatSend(t, c, `{"type":"restart"}`)
	eventually(t, "the restart's start", func() bool { return spawns.Load() == 1 })
	for range 200 {
		compatSend(t, c, `{"type":"restart"}`)
		_, m := compatUntil(t, c, "error")
		if msg, _ := m["message"].(string); !strings.Contains(msg, "in progress") {
			t.Fatalf("error %q, want the restart in progress", msg)
		}
	}
	if n := spawns.Load(); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("the server logged errors for refused restarts:\n%.2000s", logs.String())
	}
}
