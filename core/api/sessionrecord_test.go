package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
)

// TestCreateSessionLimitsAndCommand: max_clients and size_policy are
// taken, stored and shown with the command in the session JSON; the
// session's own limit applies (the server has none here).
func TestCreateSessionLimitsAndCommand(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	code, body := api.do(t, "POST", "/api/v1/sessions",
		`{"id":"s1","environment_id":"fake","command":["sh","-c","echo hi"],"env":{"SECRET":"v"},"unset_env":["CLAUDECODE"],"max_clients":1,"size_policy":"smallest"}`)
	if code != 201 || body["max_clients"] != 1.0 || body["size_policy"] != "smallest" {
		t.Fatalf("create: %d %v", code, body)
	}
	for _, path := range []string{"/api/v1/sessions/s1", "/api/v1/sessions"} {
		code, body := api.do(t, "GET", path, "")
		if list, ok := body["sessions"].([]any); ok && len(list) == 1 {
			body = list[0].(map[string]any)
		}
		cmd, _ := body["command"].([]any)
		if code != 200 || !slices.Equal(cmd, []any{"sh", "-c", "echo hi"}) || body["max_clients"] != 1.0 ||
			body["size_policy"] != "smallest" || !slices.Equal(body["unset_env"].([]any), []any{"CLAUDECODE"}) {
			t.Errorf("GET %s: %d %v; want the command and limits", path, code, body)
		}
		if _, ok := body["env"]; ok {
			t.Errorf("GET %s shows env: %v", path, body)
		}
	}
	rec, err := api.store.GetSession(t.Context(), "s1")
	if err != nil || !slices.Equal(rec.Command, []string{"sh", "-c", "echo hi"}) || rec.MaxClients != 1 || rec.SizePolicy != core.SizeSmallest {
		t.Errorf("stored row %+v, %v", rec, err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	first, err := wsproto.Dial(ctx, wsprotoURL(api, "s1"), wsproto.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, err = wsproto.Dial(ctx, wsprotoURL(api, "s1"), wsproto.DialOptions{})
	var he *wsproto.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusConflict || !strings.Contains(he.Message, "max clients 1") {
		t.Fatalf("second client: %v, want 409 naming the session's limit", err)
	}

	// Without them, the session JSON leaves them out: the server's apply.
	code, body = api.do(t, "POST", "/api/v1/sessions", `{"id":"s2","environment_id":"fake"}`)
	if _, has := body["max_clients"]; code != 201 || has || body["size_policy"] != nil || body["command"] != nil {
		t.Errorf("create without limits: %d %v", code, body)
	}
}

// TestCreateSessionLimitsRefused: bad max_clients and size_policy are 400
// with a message, and start nothing.
func TestCreateSessionLimitsRefused(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	for name, body := range map[string]string{
		"negative max_clients":   `{"environment_id":"fake","max_clients":-1}`,
		"string max_clients":     `{"environment_id":"fake","max_clients":"2"}`,
		"fractional max_clients": `{"environment_id":"fake","max_clients":1.5}`,
		"unknown size_policy":    `{"environment_id":"fake","size_policy":"largest"}`,
		"numeric size_policy":    `{"environment_id":"fake","size_policy":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			code, out := api.do(t, "POST", "/api/v1/sessions", body)
			if msg, _ := out["error"].(string); code != 400 || msg == "" {
				t.Fatalf("status %d %v, want 400 with a message", code, out)
			}
		})
	}
	if n := api.env.Count(); n != 0 {
		t.Errorf("%d sessions spawned, want none", n)
	}
}

// TestCreateSessionLimitsAttacker: the new fields change nothing of the
// guard: without the token, from another site, or as text/plain, a
// create is refused and nothing starts.
func TestCreateSessionLimitsAttacker(t *testing.T) {
	api := newAPI(t, Options{Token: "tok"}, nil)
	body := `{"environment_id":"fake","max_clients":100,"size_policy":"smallest","command":["sh"]}`
	auth := []string{"Authorization", "Bearer tok"}
	for _, tt := range []struct {
		name string
		hdr  []string
		want int
	}{
		{"no token", nil, 401},
		{"cross-site page", append(slices.Clone(auth), "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"), 403},
		{"text/plain", append(slices.Clone(auth), "Content-Type", "text/plain"), 415},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if code, out := api.do(t, "POST", "/api/v1/sessions", body, tt.hdr...); code != tt.want {
				t.Fatalf("status %d %v, want %d", code, out, tt.want)
			}
		})
	}
	if n := api.env.Count(); n != 0 {
		t.Errorf("%d sessions spawned, want none", n)
	}
	if code, out := api.do(t, "POST", "/api/v1/sessions", body, auth...); code != 201 {
		t.Errorf("with the token: %d %v", code, out)
	}
}
