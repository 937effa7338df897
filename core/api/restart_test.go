package api

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// TestRestartStatus: a restart refused before anything was done is 400
// and leaves the session running; one whose new process cannot start,
// after the old one was killed, is 502, whatever the plugin's error,
// while a create that fails so is the request's fault, 400.
func TestRestartStatus(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	// The plugin refuses a program that does not exist as an invalid
	// argument, as the HOST plugin does.
	api.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		if len(req.Command) > 0 && req.Command[0] == "/nonexistent" {
			return nil, fmt.Errorf("%w: fork/exec /nonexistent: no such file or directory", shared.ErrInvalidArgument)
		}
		return fakeenv.NewPTY(req), nil
	})
	if code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"bad","environment_id":"fake","command":["/nonexistent"]}`); code != 400 {
		t.Errorf("create with a missing program: %d %v, want 400", code, body)
	}
	if code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"s1","environment_id":"fake"}`); code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}

	code, body := api.do(t, "POST", "/api/v1/sessions/s1/restart", `{"command":[""]}`)
	if code != 400 {
		t.Errorf("restart with an empty command[0]: %d %v, want 400", code, body)
	}
	if code, body := api.do(t, "GET", "/api/v1/sessions/s1", ""); code != 200 || body["status"] != "ACTIVE" {
		t.Fatalf("after a refused restart: %d %v, want the session ACTIVE", code, body)
	}

	code, body = api.do(t, "POST", "/api/v1/sessions/s1/restart", `{"command":["/nonexistent"]}`)
	msg, _ := body["error"].(string)
	if code != 502 || !strings.Contains(msg, "fork/exec /nonexistent") {
		t.Errorf("restart with a missing program: %d %v, want 502 with the cause", code, body)
	}
	code, body = api.do(t, "GET", "/api/v1/sessions/s1", "")
	reason, _ := body["status_reason"].(string)
	if code != 200 || body["status"] != "ERROR" || !strings.HasPrefix(reason, "restart failed: ") {
		t.Errorf("after the failed restart: %d %v, want ERROR, restart failed: ...", code, body)
	}
}
