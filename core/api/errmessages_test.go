package api

import (
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/core"
)

// A body over the limit is 413 with one message of the API's own, not
// the limit followed by Go's "http: request body too large"; on every
// endpoint that reads a body, the session create's (which buffers it, for
// a cluster's forwarding) and the others' (decode).
func TestBodyTooLargeMessage(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	huge := strings.Repeat("x", 2<<20)
	for _, tt := range []struct{ method, path, body string }{
		{"POST", "/api/v1/sessions", `{"environment_id":"` + huge + `"}`},
		{"POST", "/api/v1/environments", `{"id":"big","type":"FAKE","name":"` + huge + `"}`},
		{"PUT", "/api/v1/environments/fake", `{"name":"` + huge + `"}`},
	} {
		code, body := api.do(t, tt.method, tt.path, tt.body)
		want := "request body is larger than the limit of 1048576 bytes"
		if code != 413 || body["error"] != want {
			t.Errorf("%s %s with 2 MiB: %d %q; want 413 %q", tt.method, tt.path, code, body["error"], want)
		}
	}
}

// An environment's PUT on a Manager whose store cannot update
// environments (an embedder's own, without core.EnvironmentUpdater) is
// 501 saying so, not a 500; the environment is left as it was.
func TestUpdateEnvironmentNotSupported(t *testing.T) {
	api := newAPI(t, Options{}, func(o *core.Options) {
		o.Store = struct{ core.Store }{o.Store} // hides UpdateEnvironment
	})
	code, body := api.do(t, "PUT", "/api/v1/environments/fake", `{"name":"renamed"}`)
	want := "updating an environment is not supported by this store (it does not implement core.EnvironmentUpdater)"
	if code != 501 || body["error"] != want {
		t.Errorf("PUT: %d %v; want 501 %q", code, body, want)
	}
	if code, body := api.do(t, "GET", "/api/v1/environments/fake", ""); code != 200 || body["name"] != "fake" {
		t.Errorf("after the refused PUT: %d %v", code, body)
	}
}
