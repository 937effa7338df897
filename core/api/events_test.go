package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/shared"
)

// dialEvents opens the events stream of api's server with hdr, offering
// the events subprotocol unless proto is empty ("" offers none). The
// test's cleanup closes it.
func dialEvents(t *testing.T, api *apiHarness, query string, hdr http.Header, proto ...string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(api.srv.URL, "http") + "/api/v1/events" + query
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: proto, HTTPHeader: hdr})
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
	}
	return c, resp, err
}

// subscribe is dialEvents that fails the test when refused.
func subscribe(t *testing.T, api *apiHarness, hdr http.Header) *websocket.Conn {
	t.Helper()
	c, resp, err := dialEvents(t, api, "", hdr, wsproto.EventsSubprotocol)
	if err != nil {
		t.Fatalf("events: %v (%v)", err, resp)
	}
	return c
}

// nextEvent reads one message of the events stream.
func nextEvent(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("reading an event: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("an event is a binary message: %q", b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("event %q is not a JSON object: %v", b, err)
	}
	return m
}

// wantEvent reads the next event and checks its type and session.
func wantEvent(t *testing.T, c *websocket.Conn, typ, id string) map[string]any {
	t.Helper()
	m := nextEvent(t, c)
	if m["type"] != typ || m["session_id"] != id {
		t.Fatalf("event %v, want %s of %q", m, typ, id)
	}
	if ts, _ := m["time"].(string); ts == "" {
		t.Errorf("event %v has no time", m)
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("event time %q: %v", ts, err)
	}
	return m
}

func TestEventsLifecycle(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	c := subscribe(t, api, nil)
	if got := c.Subprotocol(); got != wsproto.EventsSubprotocol {
		t.Errorf("subprotocol %q, want %q", got, wsproto.EventsSubprotocol)
	}

	_, p := api.create(t, "a")
	wantEvent(t, c, "session_created", "a")
	p.End(shared.ExitStatus{Code: 3})
	if m := wantEvent(t, c, "session_exited", "a"); m["exit_code"] != 3.0 || m["exit_signal"] != nil {
		t.Errorf("exit event %v, want exit_code 3 and no signal", m)
	}

	api.create(t, "b")
	wantEvent(t, c, "session_created", "b")
	if code, body := api.do(t, "POST", "/api/v1/sessions/b/restart", "{}"); code != 200 {
		t.Fatalf("restart: %d %v", code, body)
	}
	wantEvent(t, c, "session_restarted", "b")
	if code, body := api.do(t, "DELETE", "/api/v1/sessions/b", ""); code != 204 {
		t.Fatalf("destroy: %d %v", code, body)
	}
	// The killed process's exit comes before the destroy.
	for {
		m := nextEvent(t, c)
		if m["session_id"] != "b" {
			t.Fatalf("event %v, want b's", m)
		}
		if m["type"] == "session_destroyed" {
			break
		}
		if m["type"] != "session_exited" {
			t.Fatalf("event %v, want b's exit or destroy", m)
		}
	}

	// Client messages are ignored; the stream goes on.
	if err := c.Write(t.Context(), websocket.MessageText, []byte(`{"type":"hello"}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(t.Context(), websocket.MessageBinary, make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	api.create(t, "c")
	wantEvent(t, c, "session_created", "c")

	// A stopping manager ends the stream with 1001.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := api.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue // c's hang-up events
		}
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("the stream ended with %v, want close 1001", err)
		}
		break
	}
}

func TestEventsNoSubprotocol(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	c, resp, err := dialEvents(t, api, "", nil) // as new WebSocket(url)
	if err != nil {
		t.Fatalf("events without a subprotocol: %v (%v)", err, resp)
	}
	api.create(t, "x")
	wantEvent(t, c, "session_created", "x")
}

func TestEventsRefusals(t *testing.T) {
	api := newAPI(t, Options{Token: "full-tok", ReadToken: "read-tok", AllowedOrigins: []string{"app.example.test"}}, nil)
	port := api.port(t)
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	for i, tt := range []struct {
		name, query string
		hdr         http.Header
		want        int // 0: subscribed
	}{
		{"no token", "", nil, 401},
		{"wrong token", "", bearer("nope"), 401},
		{"wrong token in the query", "?access_token=nope", nil, 401},
		{"token header", "", bearer("full-tok"), 0},
		{"token in the query", "?access_token=full-tok", nil, 0},
		{"read-only token", "", bearer("read-tok"), 0},
		{"read-only token in the query", "?access_token=read-tok", nil, 0},
		{"cross-origin page", "?access_token=full-tok", http.Header{"Origin": {"http://evil.example:" + port}}, 403},
		{"cross-site fetch", "?access_token=full-tok", http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"same-origin page", "?access_token=full-tok", http.Header{"Origin": {"http://127.0.0.1:" + port}, "Sec-Fetch-Site": {"same-origin"}}, 0},
		{"allowed origin", "?access_token=full-tok", http.Header{"Origin": {"https://app.example.test"}, "Sec-Fetch-Site": {"cross-site"}}, 0},
	} {
		id := fmt.Sprintf("r%d", i)
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := dialEvents(t, api, tt.query, tt.hdr, wsproto.EventsSubprotocol)
			if tt.want != 0 {
				if err == nil {
					t.Fatal("subscribed")
				}
				if resp == nil || resp.StatusCode != tt.want {
					t.Fatalf("refusal %v, want status %d", resp, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v (%v)", err, resp)
			}
			api.create(t, id)
			wantEvent(t, c, "session_created", id)
		})
	}
}

func TestEventsManySubscribers(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	var subs []*websocket.Conn
	for range 50 {
		subs = append(subs, subscribe(t, api, nil))
	}
	api.create(t, "m")
	if code, _ := api.do(t, "DELETE", "/api/v1/sessions/m", ""); code != 204 {
		t.Fatal(code)
	}
	for i, c := range subs {
		wantEvent(t, c, "session_created", "m")
		for m := nextEvent(t, c); m["type"] != "session_destroyed"; m = nextEvent(t, c) {
			if m["type"] != "session_exited" {
				t.Fatalf("subscriber %d: event %v", i, m)
			}
		}
	}
}

// TestEventsStalledSubscriber: a subscriber that reads nothing slows no
// session down, and reads on once it does.
func TestEventsStalledSubscriber(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	stalled := subscribe(t, api, nil) // not read until the end
	const n = 300                     // 600 events, beyond the bus's buffer
	start := time.Now()
	for i := range n {
		id := fmt.Sprintf("s%d", i)
		opStart := time.Now()
		api.create(t, id)
		if code, _ := api.do(t, "DELETE", "/api/v1/sessions/"+id, ""); code != 204 {
			t.Fatalf("destroy %s: %d", id, code)
		}
		if d := time.Since(opStart); d > 2*time.Second {
			t.Fatalf("create and destroy %s took %v with a stalled subscriber", id, d)
		}
	}
	t.Logf("%d creates and destroys in %v", n, time.Since(start))
	// The stalled subscriber reads on: it sees, in order, events (or that
	// it lost some) up to the last session's destroy.
	last := fmt.Sprintf("s%d", n-1)
	for {
		m := nextEvent(t, stalled)
		if m["type"] == "session_destroyed" && m["session_id"] == last {
			break
		}
	}
}

// TestEventsLost: a subscriber that fell behind further than the bus
// keeps is told so, once, and then gets the events that follow.
func TestEventsLost(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// A subscription nobody reads while more events than it buffers
	// happen, then streamed to a client.
	evs := api.m.Subscribe(ctx)
	for i := range 150 {
		id := fmt.Sprintf("l%d", i)
		api.create(t, id)
		if err := api.m.DestroySession(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	h := &handler{m: api.m, opts: Options{WriteTimeout: DefaultWriteTimeout}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			defer cancel()
			discardMessages(ctx, conn)
		}()
		h.streamEvents(ctx, conn, evs)
	}))
	defer srv.Close()
	c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if m := nextEvent(t, c); m["type"] != eventsLost || len(m) != 1 {
		t.Fatalf("first message %v, want only {\"type\":%q}", m, eventsLost)
	}
	api.create(t, "after")
	wantEvent(t, c, "session_created", "after")
}

func TestAuthScope(t *testing.T) {
	open := newAPI(t, Options{}, nil)
	if code, body := open.do(t, "GET", "/api/v1/auth", ""); code != 200 || body["token_required"] != false || body["scope"] != "full" {
		t.Errorf("no token server: %d %v", code, body)
	}
	api := newAPI(t, Options{Token: "full-tok", ReadToken: "read-tok"}, nil)
	for _, tt := range []struct {
		name  string
		hdr   []string
		path  string
		want  int
		scope string
	}{
		{"no token", nil, "", 401, ""},
		{"wrong token", []string{"Authorization", "Bearer nope"}, "", 401, ""},
		{"full token", []string{"Authorization", "Bearer full-tok"}, "", 200, "full"},
		{"read token", []string{"Authorization", "Bearer read-tok"}, "", 200, "read"},
		{"read token in the query", nil, "?access_token=read-tok", 200, "read"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := api.do(t, "GET", "/api/v1/auth"+tt.path, "", tt.hdr...)
			if code != tt.want {
				t.Fatalf("status %d %v, want %d", code, body, tt.want)
			}
			if tt.want == 200 && (body["token_required"] != true || body["scope"] != tt.scope || len(body) != 2) {
				t.Errorf("body %v, want token_required true and scope %q", body, tt.scope)
			}
		})
	}
}

// An event's fields: exit and error only when the event has them.
func TestEventMessageOf(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, tt := range []struct {
		e    core.Event
		want string
	}{
		{core.Event{Type: core.SessionCreated, SessionID: "a", Time: at},
			`{"type":"session_created","session_id":"a","time":"2026-01-02T03:04:05.000000006Z"}`},
		{core.Event{Type: core.SessionExited, SessionID: "a", Time: at, Exit: &core.ExitStatus{Code: 137, Signal: "SIGKILL"}},
			`{"type":"session_exited","session_id":"a","time":"2026-01-02T03:04:05.000000006Z","exit_code":137,"exit_signal":"SIGKILL"}`},
		{core.Event{Type: core.SessionExited, SessionID: "a", Time: at, Exit: &core.ExitStatus{}},
			`{"type":"session_exited","session_id":"a","time":"2026-01-02T03:04:05.000000006Z","exit_code":0}`},
		{core.Event{Type: core.SessionError, SessionID: "a", Time: at, Err: errors.New("spawn failed")},
			`{"type":"session_error","session_id":"a","time":"2026-01-02T03:04:05.000000006Z","error":"spawn failed"}`},
	} {
		b, err := json.Marshal(eventMessageOf(tt.e))
		if err != nil || string(b) != tt.want {
			t.Errorf("%+v:\n got %s (%v)\nwant %s", tt.e, b, err, tt.want)
		}
	}
}

// A manager detached for the next server ends the stream with 1012: the
// sessions go on, and the client lists them again from the next one.
func TestEventsDetachClosesRestart(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	c, _, err := dialEvents(t, api, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := api.m.Detach(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		if websocket.CloseStatus(err) != websocket.StatusServiceRestart {
			t.Fatalf("the stream ended with %v, want close 1012", err)
		}
		break
	}
}

// TestEventMessageOfRelayed: a relayed event names its node; the relay's
// events_lost is the bare events_lost message, as for a full buffer.
func TestEventMessageOfRelayed(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b, _ := json.Marshal(eventMessageOf(core.Event{Type: core.SessionCreated, SessionID: "s1", Node: "b", Time: at}))
	if got, want := string(b), `{"type":"session_created","session_id":"s1","time":"2026-01-02T03:04:05Z","node":"b"}`; got != want {
		t.Errorf("relayed event: %s, want %s", got, want)
	}
	b, _ = json.Marshal(eventMessageOf(core.Event{Type: core.EventsLost, Time: at, Node: "b"}))
	if got, want := string(b), `{"type":"events_lost"}`; got != want {
		t.Errorf("events_lost: %s, want %s", got, want)
	}
}
