package api

import (
	"context"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// unreadPTY is a terminal whose program does not read its input: a write
// waits until release.
type unreadPTY struct {
	*fakeenv.PTY
	writing chan struct{} // closed when the first write waits
	release chan struct{}
}

func (p *unreadPTY) Write(b []byte) (int, error) {
	select {
	case <-p.writing:
	default:
		close(p.writing)
	}
	<-p.release
	return len(b), nil
}

// A client whose input waits for a program that does not read, and that
// then goes away, no longer counts as attached, although its reader is
// still in the write: the session goes idle and has room for a client.
func TestStuckInputDoesNotKeepAGoneClientAttached(t *testing.T) {
	api := newAPI(t, Options{PingInterval: 100 * time.Millisecond}, nil)
	p := &unreadPTY{writing: make(chan struct{}), release: make(chan struct{})}
	api.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p.PTY = fakeenv.NewPTY(req)
		api.env.Add(p.PTY)
		return p, nil
	})
	defer close(p.release) // after the session's end, in Cleanup: unstuck first
	api.create(t, "s")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := wsproto.Dial(ctx, wsprotoURL(api, "s"), wsproto.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Input(ctx, []byte("a paste the program never reads")); err != nil {
		t.Fatal(err)
	}
	<-p.writing
	c.Close()
	eventually(t, "the gone client to be detached", func() bool {
		rec, err := api.m.GetSession(ctx, "s")
		return err == nil && rec.ActiveConnections == 0
	})
}
