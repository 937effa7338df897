package api

import (
	"context"
	"testing"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/shared"
)

// POST /api/v1/sessions/prune goes through Guard and the token like every
// endpoint: what a web page could make a browser send, a GET, and a
// request without the token delete nothing.
func TestPruneEndpointRefusals(t *testing.T) {
	api := newAPI(t, Options{Token: "tok"}, nil)
	api.create(t, "ended")
	if err := api.m.DestroySession(context.Background(), "ended"); err != nil {
		t.Fatal(err)
	}
	waitStored(t, api.harness, "ended", core.StatusTerminated)
	auth := []string{"Authorization", "Bearer tok"}
	tests := []struct {
		name, method, body string
		hdr                []string
		want               int
	}{
		{"cross-origin page", "POST", `{}`, append([]string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, auth...), 403},
		{"cross-site fetch without origin", "POST", `{}`, append([]string{"Sec-Fetch-Site", "cross-site"}, auth...), 403},
		{"text/plain", "POST", `{}`, append([]string{"Content-Type", "text/plain"}, auth...), 415},
		{"no content type", "POST", ``, append([]string{"Content-Type", ""}, auth...), 415},
		{"GET names the session of id prune", "GET", ``, auth, 404},
		{"no token", "POST", `{}`, nil, 401},
		{"wrong token", "POST", `{}`, []string{"Authorization", "Bearer nope"}, 401},
		{"unknown field", "POST", `{"older_than":"1h"}`, auth, 400},
		{"not JSON", "POST", `prune`, auth, 400},
		{"not an object", "POST", `[]`, auth, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := api.do(t, tt.method, "/api/v1/sessions/prune", tt.body, tt.hdr...)
			if code != tt.want {
				t.Errorf("status %d, want %d (%v)", code, tt.want, body)
			}
			if _, err := api.store.GetSession(context.Background(), "ended"); err != nil {
				t.Errorf("the ended session's record is gone: %v", err)
			}
		})
	}
}

// A prune deletes the records of the ended sessions, TERMINATED and
// ERROR, at once, says how many, and leaves the running ones.
func TestPruneEndpoint(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	api.create(t, "running")
	api.create(t, "destroyed")
	_, pty := api.create(t, "exited")
	_, lost := api.create(t, "lost")
	if err := api.m.DestroySession(context.Background(), "destroyed"); err != nil {
		t.Fatal(err)
	}
	pty.End(shared.ExitStatus{Code: 3})
	lost.End(shared.ExitStatus{Code: -1, Reason: "the remote host went away"})
	waitStored(t, api.harness, "destroyed", core.StatusTerminated)
	waitStored(t, api.harness, "exited", core.StatusTerminated)
	waitStored(t, api.harness, "lost", core.StatusError)

	for _, body := range []string{``, `{}`} {
		code, out := api.do(t, "POST", "/api/v1/sessions/prune", body)
		want := 3.0
		if body != "" {
			want = 0 // the second prune finds nothing left
		}
		if code != 200 || out["deleted"] != want {
			t.Errorf("prune with body %q: %d %v, want 200 with deleted %v", body, code, out, want)
		}
	}
	if _, err := api.store.GetSession(context.Background(), "destroyed"); err == nil {
		t.Error("the destroyed session's record is still stored")
	}
	if code, out := api.do(t, "GET", "/api/v1/sessions/running", ""); code != 200 || out["status"] == "TERMINATED" {
		t.Errorf("the running session after a prune: %d %v", code, out)
	}
}

// waitStored waits until the store holds session id with status want: the
// manager writes behind.
func waitStored(t *testing.T, h *harness, id string, want core.Status) {
	t.Helper()
	eventually(t, id+" stored as "+string(want), func() bool {
		rec, err := h.store.GetSession(context.Background(), id)
		return err == nil && rec.Status == want
	})
}
