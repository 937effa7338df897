package api

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
	"github.com/ptyhost/ptyhost/shared"
)

// bToken is what a client of b sends: b's API has a token.
var bToken = []string{"Authorization", "Bearer b-token"}

// TestForwardPastLingeringCopy: x exited on b and lingers there; x is
// then created again on a, whose record the shared store holds. Reading x
// on b gives a's record, and an attach and a DELETE through b reach a's x,
// not b's lingering copy.
func TestForwardPastLingeringCopy(t *testing.T) {
	c := newTwoNodes(t, Options{})
	ctx := context.Background()
	_, old := c.b.create(t, "x")
	old.End(shared.ExitStatus{Code: 7})
	eventually(t, "b's x to exit", func() bool {
		rec, err := c.b.store.GetSession(ctx, "x")
		return err == nil && rec.Status == core.StatusTerminated
	})
	if err := c.b.m.Attachable("x"); err != nil {
		t.Fatalf("b's x does not linger: %v", err)
	}
	rec, pty := c.a.create(t, "x")
	if err := c.b.store.SaveSession(ctx, rec); err != nil { // the shared database
		t.Fatal(err)
	}

	api := &apiHarness{srv: c.bSrv}
	if code, body := api.do(t, "GET", "/api/v1/sessions/x", "", bToken...); code != http.StatusOK || body["node"] != "a" || body["status"] != "ACTIVE" {
		t.Errorf("GET x through b: %d %v; want a's ACTIVE x", code, body)
	}
	if code, body := api.do(t, "GET", "/api/v1/sessions", "", bToken...); code != http.StatusOK || !listsXOnA(body) {
		t.Errorf("list through b: %d %v; want a's ACTIVE x", code, body)
	}
	tm := attachThroughB(t, c, "x")
	pty.Output(t, []byte("from a"))
	tm.WaitOutput("from a")

	if code, msg := request(t, c.bSrv, "DELETE", "/api/v1/sessions/x", bToken...); code != http.StatusNoContent {
		t.Fatalf("DELETE x through b: %d %q", code, msg)
	}
	if err := c.a.m.Attachable("x"); !errors.Is(err, core.ErrSessionNotFound) {
		t.Errorf("a's x after DELETE through b: %v; want it destroyed", err)
	}
}

// listsXOnA reports whether a listing's body holds x, on a and ACTIVE.
func listsXOnA(body map[string]any) bool {
	list, _ := body["sessions"].([]any)
	for _, s := range list {
		if s, _ := s.(map[string]any); s["id"] == "x" {
			return s["node"] == "a" && s["status"] == "ACTIVE"
		}
	}
	return false
}

// attachThroughB attaches to id through b with b's token.
func attachThroughB(t *testing.T, c *twoNodes, id string) *e2etest.Term {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := wsproto.Dial(ctx, wsproto.WSURL(c.bSrv.URL)+wsproto.AttachPath(id), wsproto.DialOptions{
		Header: http.Header{"Authorization": {"Bearer b-token"}}, ReadLimit: -1})
	if err != nil {
		t.Fatalf("attach to %s through b: %v", id, err)
	}
	tm := e2etest.NewTerm(t, conn)
	if tm.Hello().SessionID != id {
		t.Fatalf("hello %+v, want %s", tm.Hello(), id)
	}
	return tm
}

// TestNodeLostRecord: a session b ran, recorded node_lost while b is
// away, is not ended for good: through a, an attach is 503 node_lost
// before any upgrade (which clients retry), and so are a restart and the
// recording, not 410 or 404. Once b is back, b answers for it: a record
// still node_lost there is final (410). A DELETE through a while b is away
// ends it: recorded TERMINATED, and an attach is 410.
func TestNodeLostRecord(t *testing.T) {
	c := newTwoNodes(t, Options{})
	ctx := context.Background()
	now := time.Now().UTC()
	lost := core.SessionRecord{ID: "gone", EnvironmentID: "fake", Node: "b", Status: core.StatusError,
		StatusReason: core.ReasonNodeLost, CreatedAt: now, UpdatedAt: now}
	for _, h := range []*harness{c.a, c.b} { // the shared database
		if err := h.store.SaveSession(ctx, lost); err != nil {
			t.Fatal(err)
		}
	}
	c.setBHealthy(false)

	attach := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := wsproto.Dial(ctx, wsproto.WSURL(c.aSrv.URL)+wsproto.AttachPath("gone"), wsproto.DialOptions{})
		return err
	}
	var he *wsproto.HandshakeError
	if err := attach(); !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("attach while b is away: %v; want HTTP 503", err)
	}
	api := &apiHarness{srv: c.aSrv}
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/api/v1/sessions/gone/attach", ""},
		{"POST", "/api/v1/sessions/gone/restart", "{}"},
		{"GET", "/api/v1/sessions/gone/recording", ""},
	} {
		code, body := api.do(t, r.method, r.path, r.body)
		if code != http.StatusServiceUnavailable || body["reason"] != CloseReasonNodeLost || body["node"] != "b" {
			t.Errorf("%s %s while b is away: %d %v; want 503 node_lost naming b", r.method, r.path, code, body)
		}
	}

	// The compatibility endpoint's client sees no status: it is closed
	// 4503 node_lost, with no exit message.
	compat, _, err := dialCompat(t, api, "/ws/terminal/gone", nil)
	if err != nil {
		t.Fatalf("compatibility attach while b is away: %v", err)
	}
	if m, err := compatRead(t, compat); websocket.CloseStatus(err) != CloseNodeLost {
		t.Errorf("compatibility attach while b is away: message %v, %v; want close %d node_lost", m, err, CloseNodeLost)
	}

	// b is back, and did not take it up: b's record is final.
	c.setBHealthy(true)
	if err := attach(); !errors.As(err, &he) || he.StatusCode != http.StatusGone {
		t.Errorf("attach once b is back: %v; want HTTP 410", err)
	}
	compat, _, err = dialCompat(t, api, "/ws/terminal/gone", nil)
	if err != nil {
		t.Fatalf("compatibility attach once b is back: %v", err)
	}
	if m := compatNext(t, compat); m["type"] != "exit" {
		t.Errorf("compatibility attach once b is back: %v; want the exit", m)
	}

	c.setBHealthy(false)
	if code, msg := request(t, c.aSrv, "DELETE", "/api/v1/sessions/gone"); code != http.StatusNoContent {
		t.Fatalf("DELETE while b is away: %d %q", code, msg)
	}
	rec, err := c.a.store.GetSession(ctx, "gone")
	if err != nil || rec.Status != core.StatusTerminated || rec.StatusReason != core.ReasonDestroyedNodeLost {
		t.Errorf("record after DELETE: %+v, %v; want TERMINATED, destroyed", rec, err)
	}
	if err := attach(); !errors.As(err, &he) || he.StatusCode != http.StatusGone {
		t.Errorf("attach after DELETE: %v; want HTTP 410", err)
	}
}

// A node that cannot read the store answers a request about a session it
// does not run 503, to be tried again, not 404: the session may run on
// another node, and clients take 404 as its end. Once the store answers,
// the request reaches the session's node again.
func TestStoreFailureIsNoNotFound(t *testing.T) {
	c := newTwoNodes(t, Options{})
	db := c.a.store.Gorm()
	if err := db.Exec(`ALTER TABLE sessions RENAME TO sessions_away`).Error; err != nil {
		t.Fatal(err)
	}
	back := func() {
		if err := db.Exec(`ALTER TABLE sessions_away RENAME TO sessions`).Error; err != nil {
			t.Fatal(err)
		}
	}
	var he *wsproto.HandshakeError
	if _, err := dial(t, c.aSrv, wsproto.DialOptions{}); !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable {
		back()
		t.Fatalf("attach through a while its store fails: %v, want 503", err)
	}
	for _, tt := range []struct{ method, path string }{
		{http.MethodGet, "/api/v1/sessions/s1"},
		{http.MethodGet, "/api/v1/sessions/s1/recording"},
		{http.MethodPost, "/api/v1/sessions/s1/restart"},
		{http.MethodDelete, "/api/v1/sessions/s1"},
	} {
		if code, msg := request(t, c.aSrv, tt.method, tt.path, "Content-Type", "application/json"); code != http.StatusServiceUnavailable {
			back()
			t.Fatalf("%s %s through a while its store fails: %d %q, want 503", tt.method, tt.path, code, msg)
		}
	}
	back()
	tm := attachThrough(t, c.aSrv, wsproto.DialOptions{})
	c.pty.Output(t, []byte("still on b"))
	tm.WaitOutput("still on b")
}
