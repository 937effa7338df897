package e2etest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// requestTimeout bounds one REST request.
const requestTimeout = 60 * time.Second

// Do sends a request to the server's API and decodes its JSON answer; it
// is safe in any goroutine and after the test's context ends (cleanups
// make requests too). A body that is a string or []byte is sent as it is,
// any other non-nil body as JSON. POST, PUT and PATCH carry Content-Type
// application/json, as the server requires; the Token, if set, goes as a
// Bearer token. An empty answer (204) decodes to nil; one that is not
// JSON is an error.
func (s *Server) Do(method, path string, body any) (int, map[string]any, error) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewReader([]byte(b))
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: body: %w", method, path, err)
		}
		r = bytes.NewReader(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		req.Header.Set("Content-Type", "application/json")
	}
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return resp.StatusCode, nil, nil
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: %d answer %q is not a JSON object: %w", method, path, resp.StatusCode, Tail(b, 300), err)
	}
	return resp.StatusCode, out, nil
}

// Request is Do that fails the test on an error.
func (s *Server) Request(t testing.TB, method, path string, body any) (int, map[string]any) {
	t.Helper()
	code, out, err := s.Do(method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return code, out
}

// CreateEnvironment creates an environment of the given type and config
// and fails the test unless the answer is 201.
func (s *Server) CreateEnvironment(t testing.TB, id, typ string, config any) string {
	t.Helper()
	code, out := s.Request(t, "POST", "/api/v1/environments", map[string]any{"id": id, "type": typ, "config": config})
	if code != http.StatusCreated {
		t.Fatalf("create environment %s: %d %v", id, code, out)
	}
	return id
}

// CreateSession creates a session (in the host environment unless body
// names one) and returns its id; it fails the test unless the answer is
// 201. The test's cleanup destroys the session, if the server still
// answers.
func (s *Server) CreateSession(t testing.TB, body map[string]any) string {
	t.Helper()
	if _, ok := body["environment_id"]; !ok {
		body["environment_id"] = "host"
	}
	code, out := s.Request(t, "POST", "/api/v1/sessions", body)
	if code != http.StatusCreated {
		t.Fatalf("create session: %d %v", code, out)
	}
	id, _ := out["id"].(string)
	if id == "" {
		t.Fatalf("create session: no id in %v", out)
	}
	t.Cleanup(func() { _, _, _ = s.Do("DELETE", "/api/v1/sessions/"+id, nil) })
	return id
}

// Session returns a session's record and fails the test unless the answer
// is 200.
func (s *Server) Session(t testing.TB, id string) map[string]any {
	t.Helper()
	code, out := s.Request(t, "GET", "/api/v1/sessions/"+id, nil)
	if code != http.StatusOK {
		t.Fatalf("get session %s: %d %v", id, code, out)
	}
	return out
}

// WaitPlugins waits until every plugin runs: they start in the background
// while the API already answers.
func (s *Server) WaitPlugins(t testing.TB, within time.Duration) {
	t.Helper()
	var last any
	Eventually(t, within, "every plugin running", func() bool {
		code, out, err := s.Do("GET", "/api/v1/plugins", nil)
		if err != nil || code != http.StatusOK {
			last = fmt.Sprint(code, " ", err)
			return false
		}
		last = out["plugins"]
		list, _ := out["plugins"].([]any)
		for _, p := range list {
			if p, _ := p.(map[string]any); p["state"] != "running" {
				return false
			}
		}
		return len(list) > 0
	}, func() string { return fmt.Sprint("plugins: ", last) })
}

// Eventually polls cond every 20 ms until it holds, and fails the test if
// it does not within the bound; detail, if not nil, adds what was last
// seen to the failure.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool, detail func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			if detail != nil {
				t.Fatalf("%s: not within %v; %s", what, within, detail())
			}
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
