package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// A browser's WebSocket carries its token as a second subprotocol: the
// server reads it (the full token, the read-only one with its limits, a
// wrong or garbled one refused, another origin refused whatever it
// carries) and chooses the endpoint's own subprotocol, never the token's.
func TestTokenSubprotocol(t *testing.T) {
	api := newAPI(t, Options{Token: "full-tok", ReadToken: "read-tok"}, nil)
	api.create(t, "s")
	base := "ws" + strings.TrimPrefix(api.srv.URL, "http")
	tok := wsproto.TokenSubprotocol
	for _, tt := range []struct {
		name, path string
		protos     []string
		hdr        http.Header
		want       int // 0: accepted
	}{
		{"attach, full token", "/api/v1/sessions/s/attach", []string{wsproto.Subprotocol, tok("full-tok")}, nil, 0},
		{"attach, token first", "/api/v1/sessions/s/attach", []string{tok("full-tok"), wsproto.Subprotocol}, nil, 0},
		{"attach, wrong token", "/api/v1/sessions/s/attach", []string{wsproto.Subprotocol, tok("nope")}, nil, 401},
		{"attach, not base64url", "/api/v1/sessions/s/attach", []string{wsproto.Subprotocol, wsproto.TokenSubprotocolPrefix + "full-tok!"}, nil, 401},
		{"attach, read token", "/api/v1/sessions/s/attach", []string{wsproto.Subprotocol, tok("read-tok")}, nil, 403},
		{"attach, read token, read mode", "/api/v1/sessions/s/attach?mode=read", []string{wsproto.Subprotocol, tok("read-tok")}, nil, 0},
		{"attach, another origin", "/api/v1/sessions/s/attach", []string{wsproto.Subprotocol, tok("full-tok")}, http.Header{"Origin": {"http://evil.example"}}, 403},
		{"attach, wrong token beside a right query", "/api/v1/sessions/s/attach?access_token=full-tok", []string{wsproto.Subprotocol, tok("nope")}, nil, 401},
		{"events, read token", "/api/v1/events", []string{wsproto.EventsSubprotocol, tok("read-tok")}, nil, 0},
		{"events, no token", "/api/v1/events", []string{wsproto.EventsSubprotocol}, nil, 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, base+tt.path, &websocket.DialOptions{Subprotocols: tt.protos, HTTPHeader: tt.hdr})
			if tt.want != 0 {
				if err == nil {
					c.CloseNow()
					t.Fatal("accepted")
				}
				if resp == nil || resp.StatusCode != tt.want {
					t.Fatalf("refusal %v (%v), want status %d", resp, err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v (%v)", err, resp)
			}
			defer c.CloseNow()
			if got := c.Subprotocol(); got != tt.protos[0] && got != tt.protos[1] || strings.HasPrefix(got, wsproto.TokenSubprotocolPrefix) {
				t.Errorf("the server chose subprotocol %q", got)
			}
		})
	}
}

// A request forwarded to another node keeps the subprotocols the client
// offered but the token's.
func TestWithoutTokenSubprotocols(t *testing.T) {
	h := http.Header{}
	h.Add("Sec-WebSocket-Protocol", wsproto.TokenSubprotocol("t1")+", "+wsproto.Subprotocol)
	h.Add("Sec-WebSocket-Protocol", "other, "+wsproto.TokenSubprotocol("t2"))
	withoutTokenSubprotocols(h)
	if got := h.Values("Sec-WebSocket-Protocol"); len(got) != 1 || got[0] != wsproto.Subprotocol+", other" {
		t.Errorf("Sec-WebSocket-Protocol %q, want %q", got, wsproto.Subprotocol+", other")
	}
	h = http.Header{"Sec-Websocket-Protocol": {wsproto.TokenSubprotocol("t")}}
	withoutTokenSubprotocols(h)
	if _, ok := h["Sec-Websocket-Protocol"]; ok {
		t.Errorf("a header of the token alone is left: %q", h)
	}
}

// A browser's attach through a, its token as a subprotocol: b receives
// the endpoint's subprotocol, not the token's.
func TestForwardStripsTokenSubprotocol(t *testing.T) {
	c := newTwoNodes(t, Options{Token: "a-token", ReadToken: "a-read"})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, wsproto.WSURL(c.aSrv.URL)+wsproto.AttachPath("s1"), &websocket.DialOptions{
		Subprotocols: []string{wsproto.Subprotocol, wsproto.TokenSubprotocol("a-token")}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if conn.Subprotocol() != wsproto.Subprotocol {
		t.Errorf("chose %q", conn.Subprotocol())
	}
	h := c.lastBHeader()
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		if strings.Contains(v, wsproto.TokenSubprotocolPrefix) {
			t.Errorf("b received the token subprotocol: %q", v)
		}
	}
	if got := h.Values("Sec-WebSocket-Protocol"); len(got) != 1 || !strings.Contains(got[0], wsproto.Subprotocol) {
		t.Errorf("b received Sec-WebSocket-Protocol %q, want %s", got, wsproto.Subprotocol)
	}
}

// The token subprotocol counts on a WebSocket upgrade only: a plain
// request carrying the header alone is 401.
func TestTokenSubprotocolOnPlainRequest(t *testing.T) {
	api := newAPI(t, Options{Token: "full-tok", ReadToken: "read-tok"}, nil)
	for _, m := range []string{"GET", "DELETE"} {
		req, _ := http.NewRequest(m, api.srv.URL+"/api/v1/sessions/nope", nil)
		req.Header.Set("Sec-WebSocket-Protocol", wsproto.TokenSubprotocol("full-tok"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without Upgrade, token only in Sec-WebSocket-Protocol: %d, not 401", m, resp.StatusCode)
		}
	}
}
