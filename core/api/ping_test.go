package api

import (
	"context"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// A client that stops answering — its network gone, its tab frozen — is
// disconnected after a ping goes unanswered, and stops counting as
// attached; one that keeps reading stays.
func TestPingDropsSilentClient(t *testing.T) {
	const interval = 50 * time.Millisecond
	api := newAPI(t, Options{PingInterval: interval}, nil)
	api.create(t, "silent")
	api.create(t, "alive")
	clients := func(id string) int {
		rec, err := api.m.GetSession(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return rec.ActiveConnections
	}

	// A coder/websocket client answers pings only while it reads.
	silent, _, err := dialAttach(t, api, "silent", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.CloseNow()
	alive, _, err := dialAttach(t, api, "alive", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer alive.CloseNow()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		for {
			if _, _, err := alive.Read(ctx); err != nil {
				return
			}
		}
	}()
	eventually(t, "both clients to count", func() bool { return clients("silent") == 1 && clients("alive") == 1 })

	eventually(t, "the silent client to be disconnected", func() bool { return clients("silent") == 0 })
	// Many pings later, the reading client is still attached.
	time.Sleep(10 * interval)
	if n := clients("alive"); n != 1 {
		t.Errorf("the client that reads has %d connections after 10 pings, want 1", n)
	}
}

// The server answers a client's pings (ptyhost attach sends them on a
// quiet connection), on an ordinary and on a read-only attachment, while
// the session is quiet.
func TestServerAnswersClientPings(t *testing.T) {
	api := newAPI(t, Options{Token: "tok", PingInterval: time.Hour}, nil)
	api.create(t, "quiet")
	for _, readOnly := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		c, err := wsproto.Dial(ctx, wsprotoURL(api, "quiet"), wsproto.DialOptions{Token: "tok", ReadOnly: readOnly})
		if err != nil {
			t.Fatal(err)
		}
		go func() { // the pong is read here
			for {
				if _, err := c.Next(ctx); err != nil {
					return
				}
			}
		}()
		for i := range 3 {
			pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
			if err := c.Ping(pctx); err != nil {
				t.Errorf("read-only %v: ping %d: %v", readOnly, i, err)
			}
			pcancel()
		}
		_ = c.Close()
		cancel()
	}
}
