package api

import (
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/shared"
)

// While the database is down, every environment endpoint answers 503
// saying so, as the session endpoints do, not 500.
func TestEnvironmentEndpointsStoreOutage503(t *testing.T) {
	var store *outageStore
	api := newAPI(t, Options{}, func(o *core.Options) {
		store = &outageStore{Store: o.Store}
		o.Store = store
	})
	store.down.Store(true)
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/api/v1/environments", `{"id":"new","type":"FAKE"}`},
		{"GET", "/api/v1/environments", ""},
		{"GET", "/api/v1/environments/fake", ""},
		{"PUT", "/api/v1/environments/fake", `{"name":"renamed"}`},
		{"PUT", "/api/v1/environments/fake", `{"name":"renamed","type":"FAKE"}`},
		{"DELETE", "/api/v1/environments/fake", ""},
		{"GET", "/api/v1/environments/fake/health", ""},
	} {
		code, body := api.do(t, r.method, r.path, r.body)
		if msg, _ := body["error"].(string); code != 503 || !strings.Contains(msg, "database is unavailable") {
			t.Errorf("%s %s during the outage: %d %v, want 503 saying the database is unavailable", r.method, r.path, code, body)
		}
	}
	store.down.Store(false)
	if code, body := api.do(t, "GET", "/api/v1/environments/fake", ""); code != 200 {
		t.Errorf("GET after the outage: %d %v", code, body)
	}
}

// An attach to an ended session while the database is down answers 503,
// as a GET of it does: the server cannot tell its end (410) from an
// unknown id (404).
func TestAttachEndedSessionStoreOutage503(t *testing.T) {
	var store *outageStore
	api := newAPI(t, Options{}, func(o *core.Options) {
		store = &outageStore{Store: o.Store}
		o.Store = store
		o.Linger = time.Millisecond
	})
	_, p := api.create(t, "s")
	p.End(shared.ExitStatus{Code: 5})
	eventually(t, "the ended session to be written and let go", func() bool {
		rec, err := api.store.GetSession(t.Context(), "s")
		return err == nil && rec.Status == core.StatusTerminated && api.m.Attachable("s") != nil
	})
	if code, body := api.do(t, "GET", "/api/v1/sessions/s/attach", ""); code != 410 {
		t.Fatalf("attach to the ended session: %d %v, want 410", code, body)
	}

	store.down.Store(true)
	if code, body := api.do(t, "GET", "/api/v1/sessions/s", ""); code != 503 {
		t.Errorf("GET of the ended session during the outage: %d %v, want 503", code, body)
	}
	code, body := api.do(t, "GET", "/api/v1/sessions/s/attach", "")
	if msg, _ := body["error"].(string); code != 503 || !strings.Contains(msg, "database is unavailable") {
		t.Errorf("attach to the ended session during the outage: %d %v, want 503 saying the database is unavailable", code, body)
	}
	if _, resp, err := dialAttach(t, api, "s", nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Errorf("WebSocket attach during the outage: %v %v, want 503", err, resp)
	}
	if code, body := api.do(t, "POST", "/api/v1/sessions/s/restart", `{}`); code != 503 {
		t.Errorf("restart of the ended session during the outage: %d %v, want 503", code, body)
	}
}
