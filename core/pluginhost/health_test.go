package pluginhost

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/testbin"
)

// Environment health through real plugin processes: answers cached per
// environment, refusals of sessions, and checks that do not answer.

func TestEnvironmentHealth(t *testing.T) {
	ctx := pluginsContext(t)
	dir := testbin.PluginDir(t, "docker")
	linkPlugin(t, dir, "fake", fakePluginBin(t))
	w := newPluginWorld(t, Options{Dir: dir, Plugins: []Config{{Name: "fake"}}, HealthCacheTTL: time.Hour})
	w.addEnv(t, "fine", "FAKE", "{}")
	w.addEnv(t, "down", "FAKE", `{"unhealthy":"daemon down"}`)
	w.addEnv(t, "unchecked", "FAKE", `{"unhealthy":"never asked"}`)
	w.addEnv(t, "nodocker", "DOCKER", `{"host":"unix:///nonexistent.sock","image":"busybox"}`)
	// Its plugin went away: written to the store behind the manager's back.
	if err := w.store.CreateEnvironment(ctx, core.Environment{ID: "orphan", Name: "orphan", Type: "GONE", Config: json.RawMessage("{}")}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		env     string
		status  core.HealthStatus
		reason  string
		session int // POST /api/v1/sessions
	}{
		{"fine", core.HealthHealthy, "", 201},
		{"down", core.HealthUnhealthy, "fake: daemon down", 503},
		{"nodocker", core.HealthUnhealthy, "nonexistent.sock", 503},
		{"orphan", core.HealthUnhealthy, `no plugin for environment type "GONE"`, 503},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			code, body := w.do(t, "GET", "/api/v1/environments/"+tt.env+"/health", "")
			if code != 200 || body["environment_id"] != tt.env || body["status"] != string(tt.status) ||
				!strings.Contains(fmt.Sprint(body["reason"]), tt.reason) || body["checked_at"] == nil {
				t.Errorf("GET health: %d %v, want %s with reason %q", code, body, tt.status, tt.reason)
			}
			code, body = w.do(t, "POST", "/api/v1/sessions", `{"environment_id":"`+tt.env+`","command":["exit","0"]}`)
			if code != tt.session || tt.reason != "" && !strings.Contains(fmt.Sprint(body["error"]), tt.reason) {
				t.Errorf("POST session: %d %v, want %d", code, body, tt.session)
			}
		})
	}
	// Creating a session does not ask for health itself: only a known
	// answer refuses it (this plugin's Spawn does not check health).
	if code, body := w.do(t, "POST", "/api/v1/sessions", `{"environment_id":"unchecked","command":["exit","0"]}`); code != 201 {
		t.Errorf("POST session in an environment never checked: %d %v, want 201", code, body)
	}
	if code, _ := w.do(t, "GET", "/api/v1/environments/nope/health", ""); code != 404 {
		t.Errorf("health of an unknown environment: %d, want 404", code)
	}

	// Answers are cached: the same check time until the config changes.
	first, err := w.m.EnvironmentHealth(ctx, "down")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := w.m.EnvironmentHealth(ctx, "down"); !again.CheckedAt.Equal(first.CheckedAt) {
		t.Errorf("second check at %v, first at %v: not cached", again.CheckedAt, first.CheckedAt)
	}
	if code, body := w.do(t, "PUT", "/api/v1/environments/down", `{"config":{}}`); code != 200 {
		t.Fatalf("PUT: %d %v", code, body)
	}
	if h, _ := w.m.EnvironmentHealth(ctx, "down"); h.Status != core.HealthHealthy {
		t.Errorf("after fixing the config: %+v", h)
	}
}

// A health check that does not answer in time shows, but does not keep
// sessions from starting.
func TestEnvironmentHealthTimeout(t *testing.T) {
	dir := t.TempDir()
	linkPlugin(t, dir, "fake", fakePluginBin(t))
	w := newPluginWorld(t, Options{Dir: dir, Plugins: []Config{{Name: "fake"}}, HealthTimeout: 200 * time.Millisecond})
	w.addEnv(t, "slow", "FAKE", `{"hang":true}`)
	code, body := w.do(t, "GET", "/api/v1/environments/slow/health", "")
	if code != 200 || body["status"] != "unhealthy" || !strings.Contains(fmt.Sprint(body["reason"]), "did not answer within 200ms") {
		t.Errorf("GET health: %d %v", code, body)
	}
	if code, body := w.do(t, "POST", "/api/v1/sessions", `{"environment_id":"slow","command":["exit","0"]}`); code != 201 {
		t.Errorf("POST session: %d %v, want 201", code, body)
	}
}
