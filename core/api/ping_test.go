package api

import (
	"context"
	"net/http"
	"strings"
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

// A request to a WebSocket endpoint that asks for no upgrade is 426 with
// a JSON error, as every error of the API is, and names the upgrade;
// what the endpoint answers before any upgrade comes first (a missing
// session's 404).
func TestWebSocketEndpointsWantAnUpgrade(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	api.create(t, "x")
	if code, _ := api.do(t, http.MethodGet, "/api/v1/sessions/missing/attach", ""); code != http.StatusNotFound {
		t.Errorf("GET of a missing session's attach: %d, want 404", code)
	}
	for _, path := range []string{"/api/v1/sessions/x/attach", "/api/v1/events", "/ws/terminal/x", "/ws/claude/x"} {
		for _, hdr := range [][]string{nil, {"Upgrade", "websocket"}, {"Connection", "Upgrade"}} {
			code, body := api.do(t, http.MethodGet, path, "", hdr...)
			if msg, _ := body["error"].(string); code != http.StatusUpgradeRequired || !strings.Contains(msg, "WebSocket") {
				t.Errorf("GET %s with %q: %d %v, want 426 and a JSON error", path, hdr, code, body)
			}
		}
	}
}
