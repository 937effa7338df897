package api

import (
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/core"
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
