package api

import (
	"context"
	"testing"
	"time"
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
