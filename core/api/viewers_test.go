package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/shared"
)

// dialStatus dials session id's attach endpoint with query and opts and
// returns the refusal's status, or 0 when it attached (and detached
// again).
func dialStatus(t *testing.T, api *apiHarness, id, query string, opts wsproto.DialOptions) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := wsproto.Dial(ctx, wsprotoURL(api, id)+query, opts)
	if err == nil {
		c.Close()
		return 0
	}
	var he *wsproto.HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf("dial %s%s: %v", id, query, err)
	}
	return he.StatusCode
}

// A read-only client gets output, resizes and the exit; its input and
// resizes are refused with an error message each and reach nothing.
func TestReadOnlyAttach(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	_, p := api.create(t, "ro")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := wsproto.Dial(ctx, wsprotoURL(api, "ro"), wsproto.DialOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Input(ctx, []byte("rm -rf ~\r")); err != nil {
		t.Fatal(err)
	}
	if err := c.Resize(ctx, 100, 30); err != nil {
		t.Fatal(err)
	}
	var errs []string
	for len(errs) < 2 {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the refusals (got %q): %v", errs, err)
		}
		if f.Kind == wsproto.FrameControl && f.Msg.Type == wsproto.TypeError {
			errs = append(errs, f.Msg.Message)
		}
	}
	if errs[0] != wsproto.MsgReadOnlyInput || errs[1] != wsproto.MsgReadOnlyResize {
		t.Errorf("error messages %q, want %q and %q", errs, wsproto.MsgReadOnlyInput, wsproto.MsgReadOnlyResize)
	}
	select {
	case in := <-p.Input():
		t.Fatalf("a read-only client's input reached the session: %q", in)
	case s := <-p.Resizes():
		t.Fatalf("a read-only client resized the session to %v", s)
	default:
	}
	// A writer's resize is delivered to the viewer, then output and exit.
	w, err := wsproto.Dial(ctx, wsprotoURL(api, "ro")+"?mode=write", wsproto.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Resize(ctx, 120, 40); err != nil {
		t.Fatal(err)
	}
	p.Output(t, []byte("shown"))
	var out []byte
	var resized bool
	for !resized || string(out) != "shown" {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("resize %v, output %q: %v", resized, out, err)
		}
		switch {
		case f.Kind == wsproto.FrameOutput:
			out = append(out, f.Data...)
		case f.Msg.Type == wsproto.TypeResize:
			resized = resized || (f.Msg.Cols == 120 && f.Msg.Rows == 40)
		}
	}
	p.End(shared.ExitStatus{Code: 2})
	for {
		f, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("no exit before the end: %v", err)
		}
		if f.Msg.Type == wsproto.TypeExit {
			if f.Msg.Code != 2 {
				t.Errorf("exit %+v", f.Msg)
			}
			break
		}
	}
}

func TestAttachModeParam(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	api.create(t, "m")
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"?mode=read", 0},
		{"?mode=write", 0},
		{"?mode=", 400},
		{"?mode=READ", 400},
		{"?mode=rw", 400},
		{"?mode=read&offset=-1", 400},
		// Given twice, a parameter is refused, not one of its values
		// taken: a proxy in front may read the other.
		{"?mode=read&mode=write", 400},
		{"?mode=write&mode=write", 400},
		{"?offset=0&offset=5", 400},
		{"?offset=0&epoch=a&epoch=b", 400},
	} {
		t.Run(tt.query, func(t *testing.T) {
			if got := dialStatus(t, api, "m", tt.query, wsproto.DialOptions{}); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
}

// The read-only token lists and attaches read-only; everything else it
// tries is 403, and nothing changes.
func TestReadToken(t *testing.T) {
	api := newAPI(t, Options{Token: "full-tok", ReadToken: "read-tok"}, nil)
	api.create(t, "s")
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	for _, tt := range []struct {
		name, method, path, body string
		hdr                      []string
		want                     int
	}{
		{"read lists", "GET", "/api/v1/sessions", "", bearer("read-tok"), 200},
		{"read gets", "GET", "/api/v1/sessions/s", "", bearer("read-tok"), 200},
		{"read lists environments", "GET", "/api/v1/environments", "", bearer("read-tok"), 200},
		{"read may not create", "POST", "/api/v1/sessions", `{"environment_id":"fake"}`, bearer("read-tok"), 403},
		{"read may not destroy", "DELETE", "/api/v1/sessions/s", "", bearer("read-tok"), 403},
		{"read may not delete environments", "DELETE", "/api/v1/environments/fake", "", bearer("read-tok"), 403},
		{"read in the query", "GET", "/api/v1/sessions?access_token=read-tok", "", nil, 200},
		{"read, destroy in the query", "DELETE", "/api/v1/sessions/s?access_token=read-tok", "", nil, 403},
		{"full lists", "GET", "/api/v1/sessions", "", bearer("full-tok"), 200},
		{"wrong token", "GET", "/api/v1/sessions", "", bearer("read-tok2"), 401},
		{"prefix of the read token", "GET", "/api/v1/sessions", "", bearer("read"), 401},
		{"no token", "GET", "/api/v1/sessions", "", nil, 401},
		{"attacker's form post", "POST", "/api/v1/sessions", `{"environment_id":"fake"}`, []string{"Content-Type", "text/plain"}, 415},
		{"attacker's page with the read token", "DELETE", "/api/v1/sessions/s", "", append(bearer("read-tok"), "Origin", "http://evil.example"), 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := api.do(t, tt.method, tt.path, tt.body, tt.hdr...)
			if code != tt.want {
				t.Errorf("status %d %v, want %d", code, body, tt.want)
			}
			if msg, _ := body["error"].(string); strings.Contains(msg, "read-tok") || strings.Contains(msg, "full-tok") {
				t.Errorf("the error names a token: %q", msg)
			}
		})
	}
	if rec, err := api.m.GetSession(t.Context(), "s"); err != nil || rec.Status == core.StatusTerminated {
		t.Fatalf("the session changed under the read-only token: %+v, %v", rec, err)
	}

	for _, tt := range []struct {
		name, query string
		opts        wsproto.DialOptions
		want        int
	}{
		{"read token, read mode", "", wsproto.DialOptions{Token: "read-tok", ReadOnly: true}, 0},
		{"read token in the query, read mode", "?access_token=read-tok", wsproto.DialOptions{ReadOnly: true}, 0},
		{"read token, default mode", "", wsproto.DialOptions{Token: "read-tok"}, 403},
		{"read token, write mode", "?mode=write", wsproto.DialOptions{Token: "read-tok"}, 403},
		{"full token, write mode", "", wsproto.DialOptions{Token: "full-tok"}, 0},
		{"full token, read mode", "", wsproto.DialOptions{Token: "full-tok", ReadOnly: true}, 0},
		{"no token, read mode", "", wsproto.DialOptions{ReadOnly: true}, 401},
		{"wrong token, read mode", "", wsproto.DialOptions{Token: "nope", ReadOnly: true}, 401},
		{"attacker's page, read token", "", wsproto.DialOptions{Token: "read-tok", ReadOnly: true, Header: http.Header{"Origin": {"http://evil.example"}}}, 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := dialStatus(t, api, "s", tt.query, tt.opts); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRequireTokens(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if readScope(r) {
			w.WriteHeader(299) // passed with the read-only token
		}
	})
	for _, tt := range []struct {
		name   string
		tokens Tokens
		method string
		auth   string
		want   int
	}{
		{"full", Tokens{"f", "r"}, "POST", "f", 200},
		{"read GET", Tokens{"f", "r"}, "GET", "r", 299},
		{"read HEAD", Tokens{"f", "r"}, "HEAD", "r", 299},
		{"read POST", Tokens{"f", "r"}, "POST", "r", 403},
		{"read PUT", Tokens{"f", "r"}, "PUT", "r", 403},
		{"read DELETE", Tokens{"f", "r"}, "DELETE", "r", 403},
		{"no read token: empty bearer", Tokens{"f", ""}, "GET", "", 401},
		{"no token set: all pass", Tokens{"", ""}, "POST", "", 200},
		{"wrong", Tokens{"f", "r"}, "GET", "x", 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/api/v1/sessions", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", "Bearer "+tt.auth)
			}
			w := httptest.NewRecorder()
			RequireTokens(ok, tt.tokens).ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("status %d %s, want %d", w.Code, w.Body, tt.want)
			}
		})
	}
}

// RequireFullToken: the read-only token is 403 whatever the method, with
// the API's "forbidden" error; the full token passes, others are 401.
func TestRequireFullToken(t *testing.T) {
	h := RequireFullToken(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Tokens{"f", "r"})
	for _, tt := range []struct {
		method, auth string
		want         int
	}{
		{"GET", "f", 200},
		{"GET", "r", 403},
		{"HEAD", "r", 403},
		{"POST", "r", 403},
		{"GET", "x", 401},
		{"GET", "", 401},
	} {
		r := httptest.NewRequest(tt.method, "/metrics", nil)
		if tt.auth != "" {
			r.Header.Set("Authorization", "Bearer "+tt.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("%s with %q: %d %s, want %d", tt.method, tt.auth, w.Code, w.Body, tt.want)
		}
		if tt.want == 403 && tt.method != "HEAD" && !strings.Contains(w.Body.String(), `"error":"forbidden: the read-only token`) {
			t.Errorf("%s with %q: 403 body %s, want the API's forbidden error", tt.method, tt.auth, w.Body)
		}
	}
}

// The client past max clients is refused with 409 and the reason before
// the upgrade; once one leaves, the next gets in.
func TestMaxClients409(t *testing.T) {
	api := newAPI(t, Options{}, func(o *core.Options) { o.MaxClients = 1 })
	api.create(t, "busy")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	first, err := wsproto.Dial(ctx, wsprotoURL(api, "busy"), wsproto.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = wsproto.Dial(ctx, wsprotoURL(api, "busy")+"?mode=read", wsproto.DialOptions{})
	var he *wsproto.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusConflict || !strings.Contains(he.Message, "too many clients") {
		t.Fatalf("second client: %v, want 409 saying too many clients", err)
	}
	first.Close()
	eventually(t, "the first client to leave", func() bool {
		return dialStatus(t, api, "busy", "", wsproto.DialOptions{}) == 0
	})
}

// An attacker holding the read-only token attaches read-only to a session
// whose idle timeout is 0 and that no writer has attached to, and leaves
// at once: the session goes on (it used to be destroyed, the viewer's
// leaving taken for its last client's). Then a writer's leaving ends it,
// which shows the first leaving was measured after it was handled.
func TestReadTokenViewerCannotEndSession(t *testing.T) {
	const full, read = "full-token-0123456789", "read-token-0123456789"
	api := newAPI(t, Options{Token: full, ReadToken: read}, nil)
	if code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"victim","environment_id":"fake","idle_timeout":"0"}`,
		"Authorization", "Bearer "+full); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, body)
	}
	if code := dialStatus(t, api, "victim", "?mode=read", wsproto.DialOptions{Token: read, ReadOnly: true}); code != 0 {
		t.Fatalf("read-only attach: %d", code)
	}
	var rec core.SessionRecord
	eventually(t, "the server to see the viewer leave", func() bool {
		var err error
		rec, err = api.m.GetSession(t.Context(), "victim")
		return err != nil || rec.ActiveConnections == 0
	})
	if rec.Status != core.StatusActive {
		t.Fatalf("after a viewer came and went: %+v; want ACTIVE", rec)
	}
	if code := dialStatus(t, api, "victim", "", wsproto.DialOptions{Token: full}); code != 0 {
		t.Fatalf("attach: %d", code)
	}
	eventually(t, "the session ended by its writer's leaving", func() bool {
		rec, err := api.m.GetSession(t.Context(), "victim")
		return err == nil && rec.Status == core.StatusTerminated && rec.StatusReason == core.ReasonIdleTimeout
	})
}

// An attacker holding the read-only token fills a session's client limit
// with viewers: the token's holder still attaches and types, and the
// viewer that came last is closed with 1013 and the reason. The attacker
// cannot take a writer's place in turn: with every place a writer's, a
// viewer is refused with 409.
func TestReadTokenViewersCannotLockOutWriters(t *testing.T) {
	const full, read = "full-token-0123456789", "read-token-0123456789"
	api := newAPI(t, Options{Token: full, ReadToken: read}, func(o *core.Options) { o.MaxClients = 2 })
	if code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"s","environment_id":"fake"}`,
		"Authorization", "Bearer "+full); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, body)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var viewers []*wsproto.Conn
	for range 2 {
		v, err := wsproto.Dial(ctx, wsprotoURL(api, "s")+"?mode=read", wsproto.DialOptions{Token: read, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		viewers = append(viewers, v)
	}
	if code := dialStatus(t, api, "s", "?mode=read", wsproto.DialOptions{Token: read, ReadOnly: true}); code != http.StatusConflict {
		t.Fatalf("a third viewer: %d, want 409", code)
	}

	w, err := wsproto.Dial(ctx, wsprotoURL(api, "s"), wsproto.DialOptions{Token: full})
	if err != nil {
		t.Fatalf("the token's holder, with the limit full of viewers: %v", err)
	}
	defer w.Close()
	wantDisplaced := func(v *wsproto.Conn, who string) {
		t.Helper()
		for {
			_, err := v.Next(ctx)
			if err == nil {
				continue
			}
			if code, reason, ok := wsproto.CloseStatus(err); !ok || code != wsproto.CloseTryAgainLater || reason != wsproto.CloseReasonDisplaced {
				t.Fatalf("%s's connection ended with %v, want 1013 %q", who, err, wsproto.CloseReasonDisplaced)
			}
			return
		}
	}
	wantDisplaced(viewers[1], "the last viewer")
	if err := w.Input(ctx, []byte("typed\n")); err != nil {
		t.Fatal(err)
	}

	w2, err := wsproto.Dial(ctx, wsprotoURL(api, "s"), wsproto.DialOptions{Token: full})
	if err != nil {
		t.Fatalf("a second writer, with a viewer left to give way: %v", err)
	}
	defer w2.Close()
	wantDisplaced(viewers[0], "the first viewer")
	eventually(t, "both viewers gone", func() bool {
		rec, err := api.m.GetSession(t.Context(), "s")
		return err == nil && rec.ActiveConnections == 2
	})
	if code := dialStatus(t, api, "s", "?mode=read", wsproto.DialOptions{Token: read, ReadOnly: true}); code != http.StatusConflict {
		t.Fatalf("a viewer with every place a writer's: %d, want 409", code)
	}
	if code := dialStatus(t, api, "s", "", wsproto.DialOptions{Token: full}); code != http.StatusConflict {
		t.Fatalf("a third writer: %d, want 409", code)
	}
}
