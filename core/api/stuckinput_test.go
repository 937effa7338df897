package api

import (
	"context"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// A client whose input waits for a program that does not read, and that
// then goes away, no longer counts as attached, although its reader is
// still in the write: the session goes idle and has room for a client.
func TestStuckInputDoesNotKeepAGoneClientAttached(t *testing.T) {
	api := newAPI(t, Options{PingInterval: 100 * time.Millisecond}, nil)
	var p *fakeenv.UnreadPTY
	api.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p = fakeenv.NewUnreadPTY(req)
		api.env.Add(p.PTY)
		return p, nil
	})
	api.create(t, "s")
	defer p.Release() // before the session's end, in Cleanup: unstuck first
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := wsproto.Dial(ctx, wsprotoURL(api, "s"), wsproto.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Input(ctx, []byte("a paste the program never reads")); err != nil {
		t.Fatal(err)
	}
	<-p.Writing()
	c.Close()
	eventually(t, "the gone client to be detached", func() bool {
		rec, err := api.m.GetSession(ctx, "s")
		return err == nil && rec.ActiveConnections == 0
	})
}
