package api

import (
	"sync"
	"testing"
)

// stopCalls records the calls of Options.Stop.
type stopCalls struct {
	mu    sync.Mutex
	calls []bool
	// always is the server's --hang-up-on-stop.
	always bool
}

func (s *stopCalls) stop(hangUp bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, hangUp)
	return hangUp || s.always
}

func (s *stopCalls) take() []bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls
	s.calls = nil
	return c
}

// POST /api/v1/server/stop goes through Guard and the token like every
// endpoint: what a web page could make a browser send, and a request
// without the token, never reach the callback.
func TestStopEndpointRefusals(t *testing.T) {
	var calls stopCalls
	api := newAPI(t, Options{Token: "tok", Stop: calls.stop}, nil)
	auth := []string{"Authorization", "Bearer tok"}
	tests := []struct {
		name, method, body string
		hdr                []string
		want               int
	}{
		{"cross-origin page", "POST", `{"hang_up":true}`, append([]string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, auth...), 403},
		{"cross-site fetch without origin", "POST", `{}`, append([]string{"Sec-Fetch-Site", "cross-site"}, auth...), 403},
		{"text/plain", "POST", `{"hang_up":true}`, append([]string{"Content-Type", "text/plain"}, auth...), 415},
		{"form", "POST", `hang_up=true`, append([]string{"Content-Type", "application/x-www-form-urlencoded"}, auth...), 415},
		{"no content type", "POST", ``, append([]string{"Content-Type", ""}, auth...), 415},
		{"GET", "GET", ``, auth, 405},
		{"no token", "POST", `{"hang_up":true}`, nil, 401},
		{"wrong token", "POST", `{"hang_up":true}`, []string{"Authorization", "Bearer nope"}, 401},
		{"unknown field", "POST", `{"hang_up":true,"now":1}`, auth, 400},
		{"not JSON", "POST", `hang up`, auth, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := api.do(t, tt.method, "/api/v1/server/stop", tt.body, tt.hdr...)
			if code != tt.want {
				t.Errorf("status %d, want %d (%v)", code, tt.want, body)
			}
			if c := calls.take(); len(c) != 0 {
				t.Errorf("the stop callback was called: %v", c)
			}
		})
	}
}

// A good request calls the callback once with what it asked, and the
// answer says whether the stop hangs the sessions up.
func TestStopEndpoint(t *testing.T) {
	calls := stopCalls{}
	api := newAPI(t, Options{Token: "tok", Stop: calls.stop}, nil)
	auth := []string{"Authorization", "Bearer tok"}
	tests := []struct {
		name   string
		body   string
		always bool
		want   bool
	}{
		{"leave sessions", `{"hang_up":false}`, false, false},
		{"hang up", `{"hang_up":true}`, false, true},
		{"empty body", ``, false, false},
		{"server hangs up on every stop", `{}`, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls.mu.Lock()
			calls.always = tt.always
			calls.mu.Unlock()
			code, body := api.do(t, "POST", "/api/v1/server/stop", tt.body, auth...)
			if code != 202 || body["hang_up"] != tt.want {
				t.Errorf("answer %d %v, want 202 with hang_up %v", code, body, tt.want)
			}
			want := tt.want && !tt.always
			if c := calls.take(); len(c) != 1 || c[0] != want {
				t.Errorf("callback calls %v, want one with hangUp %v", c, want)
			}
		})
	}
}

// An embedder that sets no Stop has no stop endpoint.
func TestStopEndpointAbsent(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	if code, body := api.do(t, "POST", "/api/v1/server/stop", `{"hang_up":true}`); code != 404 {
		t.Errorf("status %d (%v), want 404", code, body)
	}
}
