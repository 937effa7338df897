package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http/httpproxy"

	"github.com/ptyhost/ptyhost/internal/leakcheck"
)

// waitTimeout bounds every wait in these tests; nothing sleeps.
const waitTimeout = 10 * time.Second

func TestMain(m *testing.M) { leakcheck.Main(m) }

// syncBuffer is a bytes.Buffer safe for concurrent use whose contents a
// test can wait for.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the buffer contains want.
func (s *syncBuffer) waitFor(t *testing.T, want string) {
	t.Helper()
	s.waitUntil(t, waitTimeout, func(b string) bool { return strings.Contains(b, want) }, func(b string) string {
		return fmt.Sprintf("timed out waiting for %q; have %q", want, b)
	})
}

// waitUntil waits, waking at every write, until done holds for the
// buffer's content; after within it fails the test with why's message.
func (s *syncBuffer) waitUntil(t *testing.T, within time.Duration, done func(string) bool, why func(string) string) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if done(s.b.String()) {
			s.mu.Unlock()
			return
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatal(why(s.String()))
		}
	}
}

// cmdRun is one run of the ptyhost command line in this process.
type cmdRun struct {
	out, err syncBuffer
	done     chan error
}

// startCmd runs args with stdin in and returns at once.
func startCmd(ctx context.Context, args []string, in io.Reader) *cmdRun {
	c := &cmdRun{done: make(chan error, 1)}
	go func() { c.done <- run(ctx, args, stdio{in: in, out: &c.out, err: &c.err}) }()
	return c
}

// wait waits for the command to end and returns its exit status, with
// exitCode's message written to c.err as main would.
func (c *cmdRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-c.done:
		return exitCode(err, &c.err)
	case <-time.After(waitTimeout):
		t.Fatalf("command did not end; stdout %q, stderr %q", c.out.String(), c.err.String())
		return -1
	}
}

// runCmd runs args to the end with an empty stdin.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	c := startCmd(t.Context(), args, strings.NewReader(""))
	code = c.wait(t)
	return code, c.out.String(), c.err.String()
}

// fakeRequest is a request the fake server received.
type fakeRequest struct {
	method, path, auth, body string
	query                    string // the raw query, such as offset=18
}

// fakeResponse is a canned response.
type fakeResponse struct {
	status int
	body   string
}

// fakeServer serves the REST API of docs/protocol.md with canned data,
// and the attach endpoint with fakeSession (attach_test.go).
type fakeServer struct {
	t     *testing.T
	srv   *httptest.Server
	token string // the required bearer token; "" allows any request

	// replay is what the attach endpoint sends after hello, one binary
	// frame per element.
	replay []string

	// onlyListed makes GET /api/v1/sessions/{id} answer 404 for the ids
	// the session list does not hold; by default a session of every id
	// exists but for "missing..." ones, as on the attach endpoint.
	onlyListed bool

	// input, controls and closes record the attach connections: input
	// bytes, client text frames (one per line) and how the client
	// closed ("1000 detached"). kinds has one letter per client frame,
	// in order: "c" for a text (control) frame, "i" for input.
	input, controls, closes, kinds syncBuffer

	// stopped is closed when the test ends, before the server is: a
	// stalled attach connection is held until then.
	stopped chan struct{}

	mu       sync.Mutex
	canned   map[string]fakeResponse // by "METHOD /path"
	requests []fakeRequest
}

const cannedSessions = `{"sessions": [
  {"id": "s1", "environment_id": "host", "status": "ACTIVE", "active_connections": 1,
   "cols": 80, "rows": 24, "exit_code": null, "exit_signal": "", "created_at": "2026-11-25T10:00:00Z"},
  {"id": "s2", "environment_id": "docker", "status": "TERMINATED", "active_connections": 0,
   "cols": 120, "rows": 40, "exit_code": 3, "exit_signal": "", "created_at": "2026-11-25T10:05:00Z"},
  {"id": "s3", "environment_id": "host", "status": "ERROR", "active_connections": 0,
   "cols": 80, "rows": 24, "exit_code": -1, "exit_signal": "SIGKILL", "status_reason": "the plugin crashed",
   "created_at": "2026-11-25T10:06:00Z"}
]}`

const cannedEnvironments = `{"environments": [
  {"id": "host", "name": "This machine", "type": "HOST", "config": {"shell": "/bin/bash"},
   "created_at": "2026-11-25T10:00:00Z", "updated_at": "2026-11-25T10:00:00Z"},
  {"id": "dev", "name": "Dev box", "type": "SSH", "config": {},
   "created_at": "2026-11-25T11:00:00Z", "updated_at": "2026-11-25T11:00:00Z"}
]}`

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{
		t:      t,
		replay: []string{"replayed\r\n"},
		canned: map[string]fakeResponse{
			"GET /api/v1/sessions":     {200, cannedSessions},
			"GET /api/v1/environments": {200, cannedEnvironments},
		},
	}
	f.srv = httptest.NewServer(f)
	f.stopped = make(chan struct{})
	t.Cleanup(f.srv.Close)
	t.Cleanup(func() { close(f.stopped) }) // first: Cleanup runs last in first
	return f
}

// respond cans the response to "METHOD /path".
func (f *fakeServer) respond(route string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.canned[route] = fakeResponse{status, body}
}

func (f *fakeServer) requestsSoFar() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	route := r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{r.Method, r.URL.Path, r.Header.Get("Authorization"), string(body), r.URL.RawQuery})
	canned, ok := f.canned[route]
	f.mu.Unlock()

	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		writeJSON(w, http.StatusUnauthorized, `{"error": "unauthorized"}`)
		return
	}
	if ok {
		if canned.status == http.StatusNoContent {
			w.WriteHeader(canned.status)
			return
		}
		writeJSON(w, canned.status, canned.body)
		return
	}
	rest, isSession := strings.CutPrefix(r.URL.Path, "/api/v1/sessions/")
	switch {
	case r.Method == http.MethodGet && isSession && strings.HasSuffix(rest, "/attach"):
		f.serveAttach(w, r, strings.TrimSuffix(rest, "/attach"))
	case r.Method == http.MethodGet && isSession && !strings.Contains(rest, "/"):
		f.serveSession(w, rest)
	case route == "POST /api/v1/sessions":
		var req map[string]any
		if json.Unmarshal(body, &req) != nil {
			writeJSON(w, http.StatusBadRequest, `{"error": "invalid JSON body"}`)
			return
		}
		id, _ := req["id"].(string)
		if id == "" {
			id = "new1"
		}
		writeJSON(w, http.StatusCreated, fmt.Sprintf(`{"id": %q, "environment_id": %q, "status": "IDLE", "cols": 80, "rows": 24}`, id, req["environment_id"]))
	case route == "POST /api/v1/environments":
		var req map[string]any
		if json.Unmarshal(body, &req) != nil {
			writeJSON(w, http.StatusBadRequest, `{"error": "invalid JSON body"}`)
			return
		}
		id, _ := req["id"].(string)
		if id == "" {
			id = "env-generated"
		}
		writeJSON(w, http.StatusCreated, fmt.Sprintf(`{"id": %q, "type": %q}`, id, req["type"]))
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/api/v1/environments/"):
		f.serveEnvironment(w, strings.TrimPrefix(r.URL.Path, "/api/v1/environments/"))
	case r.Method == http.MethodDelete && (isSession || strings.HasPrefix(r.URL.Path, "/api/v1/environments/")):
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusNotFound, `{"error": "not found"}`)
	}
}

// serveSession answers GET /api/v1/sessions/{id} as a server would that
// has the sessions the list holds and, unless onlyListed, one of every id
// the attach endpoint serves: every id but "missing..." ones.
func (f *fakeServer) serveSession(w http.ResponseWriter, id string) {
	f.mu.Lock()
	list, onlyListed := f.canned["GET /api/v1/sessions"].body, f.onlyListed
	f.mu.Unlock()
	var page struct{ Sessions []json.RawMessage }
	_ = json.Unmarshal([]byte(list), &page)
	for _, raw := range page.Sessions {
		var s struct{ ID string }
		if json.Unmarshal(raw, &s) == nil && s.ID == id {
			writeJSON(w, http.StatusOK, string(raw))
			return
		}
	}
	if onlyListed || strings.HasPrefix(id, "missing") {
		writeJSON(w, http.StatusNotFound, `{"error": "session not found"}`)
		return
	}
	writeJSON(w, http.StatusOK, fmt.Sprintf(`{"id": %q, "environment_id": "host", "status": "ACTIVE", "cols": 80, "rows": 24}`, id))
}

func TestLs(t *testing.T) {
	f := newFakeServer(t)
	code, out, stderr := runCmd(t, "ls", "-a", "--server", f.srv.URL)
	if code != 0 || stderr != "" {
		t.Fatalf("ls: exit %d, stderr %q", code, stderr)
	}
	age := func(s string) string {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return shortDuration(time.Since(tm))
	}
	want := [][]string{
		{"ID", "COMMAND", "ENVIRONMENT", "STATUS", "CLIENTS", "SIZE", "AGE", "IDLE", "DETACHED", "EXIT", "REASON"},
		{"s1", "-", "host", "ACTIVE", "1", "80x24", age("2026-11-25T10:00:00Z"), "-", "-", "-", "-"},
		{"s2", "-", "docker", "TERMINATED", "0", "120x40", age("2026-11-25T10:05:00Z"), "-", "-", "3", "-"},
		{"s3", "-", "host", "ERROR", "0", "80x24", age("2026-11-25T10:06:00Z"), "-", "-", "SIGKILL", "the", "plugin", "crashed"},
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("ls printed %d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, line := range lines {
		if got := strings.Fields(line); !slices.Equal(got, want[i]) {
			t.Errorf("line %d = %q, want fields %q", i, line, want[i])
		}
	}
	// The columns line up.
	if col := strings.Index(lines[0], "STATUS"); strings.Index(lines[2], "TERMINATED") != col {
		t.Errorf("STATUS column not aligned:\n%s", out)
	}
	if r := f.requestsSoFar(); len(r) != 1 || r[0].query != "limit=1000" {
		t.Errorf("ls -a sent %v, want one request without a filter", r)
	}
}

func TestLsJSON(t *testing.T) {
	f := newFakeServer(t)
	code, out, _ := runCmd(t, "ls", "-a", "--json", "--server", f.srv.URL)
	if code != 0 {
		t.Fatalf("ls --json: exit %d", code)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("ls --json printed %q: %v", out, err)
	}
	if len(got) != 3 || got[1]["id"] != "s2" || got[1]["exit_code"] != 3.0 {
		t.Errorf("ls --json = %v", got)
	}

	f.respond("GET /api/v1/sessions", 200, `{"sessions": []}`)
	if _, out, _ := runCmd(t, "ls", "--json", "--server", f.srv.URL); out != "[]\n" {
		t.Errorf("ls --json with no sessions = %q, want []", out)
	}
}

func TestToken(t *testing.T) {
	f := newFakeServer(t)
	f.token = "s3cret"

	if code, _, stderr := runCmd(t, "ls", "--server", f.srv.URL, "--token", "s3cret"); code != 0 {
		t.Errorf("ls --token: exit %d, stderr %q", code, stderr)
	}
	t.Setenv("PTYHOST_TOKEN", "s3cret")
	t.Setenv("PTYHOST_SERVER", f.srv.URL)
	if code, _, stderr := runCmd(t, "kill", "s1"); code != 0 {
		t.Errorf("kill with PTYHOST_TOKEN: exit %d, stderr %q", code, stderr)
	}
	for _, r := range f.requestsSoFar() {
		if r.auth != "Bearer s3cret" {
			t.Errorf("%s %s: Authorization %q, want Bearer s3cret", r.method, r.path, r.auth)
		}
	}

	code, _, stderr := runCmd(t, "ls", "--token", "wrong")
	if code != 1 || stderr != "ptyhost: unauthorized: check --token or PTYHOST_TOKEN (HTTP 401)\n" {
		t.Errorf("ls with a wrong token: exit %d, stderr %q", code, stderr)
	}
}

func TestServerErrors(t *testing.T) {
	tests := []struct {
		name       string
		route      string
		status     int
		body       string
		args       []string
		wantStderr string
	}{
		{
			name:  "ls unauthorized",
			route: "GET /api/v1/sessions", status: 401, body: `{"error": "unauthorized"}`,
			args:       []string{"ls"},
			wantStderr: "ptyhost: unauthorized: check --token or PTYHOST_TOKEN (HTTP 401)\n",
		},
		{
			name:  "env rm with live sessions",
			route: "DELETE /api/v1/environments/dev", status: 409, body: `{"error": "environment dev has live sessions"}`,
			args:       []string{"env", "rm", "dev"},
			wantStderr: "ptyhost: env rm dev: environment dev has live sessions (HTTP 409)\n",
		},
		{
			name:  "env rm unknown",
			route: "DELETE /api/v1/environments/nope", status: 404, body: `{"error": "environment not found"}`,
			args:       []string{"env", "rm", "nope"},
			wantStderr: "ptyhost: env rm nope: environment not found (HTTP 404)\n",
		},
		{
			name:  "env add unknown type",
			route: "POST /api/v1/environments", status: 400, body: `{"error": "no plugin serves type \"FOO\""}`,
			args:       []string{"env", "add", "--type", "FOO"},
			wantStderr: "ptyhost: no plugin serves type \"FOO\" (HTTP 400)\n",
		},
		{
			name:  "run id taken",
			route: "POST /api/v1/sessions", status: 409, body: `{"error": "session s1 already exists"}`,
			args:       []string{"run", "--id", "s1"},
			wantStderr: "ptyhost: session s1 already exists (HTTP 409)\n",
		},
		{
			name:  "kill unavailable",
			route: "DELETE /api/v1/sessions/s1", status: 503, body: `{"error": "environment host is unavailable"}`,
			args:       []string{"kill", "s1"},
			wantStderr: "ptyhost: kill s1: environment host is unavailable (HTTP 503)\n",
		},
		{
			name:  "not JSON",
			route: "GET /api/v1/environments", status: 502, body: `<html>bad gateway</html>`,
			args:       []string{"env", "ls"},
			wantStderr: "ptyhost: bad gateway (HTTP 502)\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeServer(t)
			f.respond(tt.route, tt.status, tt.body)
			code, stdout, stderr := runCmd(t, append(tt.args, "--server", f.srv.URL)...)
			if code != 1 || stderr != tt.wantStderr || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1, stderr %q", code, stdout, stderr, tt.wantStderr)
			}
		})
	}
}

func TestUnreachableServer(t *testing.T) {
	f := newFakeServer(t)
	f.srv.Close()
	code, _, stderr := runCmd(t, "ls", "--server", f.srv.URL)
	if code != 1 || !strings.HasPrefix(stderr, "ptyhost: cannot reach the ptyhost server at "+f.srv.URL) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// kill takes full IDs and unique prefixes, resolved through the API: a
// full ID with one GET, a prefix with the list.
func TestKill(t *testing.T) {
	f := newFakeServer(t)
	f.onlyListed = true
	f.respond("GET /api/v1/sessions", 200, `{"sessions": [{"id": "s1"}, {"id": "s10"}, {"id": "abc"}]}`)
	code, stdout, stderr := runCmd(t, "kill", "s1", "--server", f.srv.URL, "a")
	if code != 0 || stdout != "" || stderr != "" {
		t.Fatalf("kill: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	var got []string
	for _, r := range f.requestsSoFar() {
		got = append(got, r.method+" "+r.path)
	}
	want := []string{"GET /api/v1/sessions/s1", "DELETE /api/v1/sessions/s1",
		"GET /api/v1/sessions/a", "GET /api/v1/sessions", "DELETE /api/v1/sessions/abc"}
	if !slices.Equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
}

// An unknown ID or an ambiguous prefix is an error (exit 1) that deletes
// nothing; the other IDs are still killed.
func TestKillUnknownOrAmbiguous(t *testing.T) {
	f := newFakeServer(t)
	f.onlyListed = true
	f.respond("GET /api/v1/sessions", 200, `{"sessions": [{"id": "s1"}, {"id": "s10"}, {"id": "abc"}]}`)
	tests := []struct {
		name       string
		args       []string
		wantStderr string
		wantKilled []string
	}{
		{"unknown", []string{"nope"}, "ptyhost: kill: session nope not found (HTTP 404)\n", nil},
		{"ambiguous", []string{"s"}, "ptyhost: kill: session ID prefix s is ambiguous: 2 sessions' IDs start with it (s1, s10); type more of it\n", nil},
		{"exact wins over prefix", []string{"s1", "zzz"}, "ptyhost: kill: session zzz not found (HTTP 404)\n", []string{"s1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(f.requestsSoFar())
			code, stdout, stderr := runCmd(t, append([]string{"kill", "--server", f.srv.URL}, tt.args...)...)
			if code != 1 || stdout != "" || stderr != tt.wantStderr {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 1, stderr %q", code, stdout, stderr, tt.wantStderr)
			}
			var killed []string
			for _, r := range f.requestsSoFar()[before:] {
				if r.method == "DELETE" {
					killed = append(killed, strings.TrimPrefix(r.path, "/api/v1/sessions/"))
				}
			}
			if !slices.Equal(killed, tt.wantKilled) {
				t.Errorf("killed %q, want %q", killed, tt.wantKilled)
			}
		})
	}
}

func TestKillSomeFail(t *testing.T) {
	f := newFakeServer(t)
	f.respond("DELETE /api/v1/sessions/s1", 503, `{"error": "unavailable s1"}`)
	f.respond("DELETE /api/v1/sessions/s3", 503, `{"error": "unavailable s3"}`)
	code, _, stderr := runCmd(t, "kill", "--server", f.srv.URL, "s1", "s2", "s3")
	want := "ptyhost: kill s1: unavailable s1 (HTTP 503)\nptyhost: kill s3: unavailable s3 (HTTP 503)\n"
	if code != 1 || stderr != want {
		t.Errorf("exit %d, stderr %q; want 1, %q", code, stderr, want)
	}
	var deletes int
	for _, r := range f.requestsSoFar() {
		if r.method == "DELETE" {
			deletes++
		}
	}
	if deletes != 3 {
		t.Errorf("%d DELETE requests, want one per id", deletes)
	}
}

func TestEnvLs(t *testing.T) {
	f := newFakeServer(t)
	code, out, _ := runCmd(t, "env", "ls", "--server", f.srv.URL)
	if code != 0 {
		t.Fatalf("env ls: exit %d", code)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 3 || !slices.Equal(strings.Fields(lines[0]), []string{"ID", "NAME", "TYPE", "CREATED"}) ||
		!strings.HasPrefix(lines[1], "host  This machine  HOST  ") ||
		!strings.HasPrefix(lines[2], "dev   Dev box       SSH   ") {
		t.Errorf("env ls printed:\n%s", out)
	}

	code, out, _ = runCmd(t, "env", "ls", "--json", "--server", f.srv.URL)
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || len(got) != 2 || fmt.Sprint(got[0]["config"]) != "map[shell:/bin/bash]" {
		t.Errorf("env ls --json: exit %d, %q (%v)", code, out, err)
	}
}

func TestEnvAdd(t *testing.T) {
	f := newFakeServer(t)
	file := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(file, []byte(" {\"host\": \"box\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantBody string
		wantOut  string
	}{
		{"minimal", []string{"--type", "HOST"}, `{"type":"HOST"}`, "env-generated\n"},
		{"all", []string{"--type", "DOCKER", "--id", "d1", "--name", "Docker", "--config", `{"image": "alpine"}`},
			`{"id":"d1","name":"Docker","type":"DOCKER","config":{"image":"alpine"}}`, "d1\n"},
		{"config file", []string{"--type", "SSH", "--config-file", file}, `{"type":"SSH","config":{"host":"box"}}`, "env-generated\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCmd(t, append([]string{"env", "add", "--server", f.srv.URL}, tt.args...)...)
			if code != 0 || out != tt.wantOut {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
			}
			r := f.requestsSoFar()[len(f.requestsSoFar())-1]
			if r.method+" "+r.path != "POST /api/v1/environments" || r.body != tt.wantBody {
				t.Errorf("sent %s %s %s, want body %s", r.method, r.path, r.body, tt.wantBody)
			}
		})
	}
}

func TestEnvRm(t *testing.T) {
	f := newFakeServer(t)
	code, out, stderr := runCmd(t, "env", "rm", "--server", f.srv.URL, "dev")
	if code != 0 || out != "" || stderr != "" {
		t.Fatalf("env rm: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if r := f.requestsSoFar(); len(r) != 1 || r[0].method+" "+r[0].path != "DELETE /api/v1/environments/dev" {
		t.Errorf("requests %v", r)
	}
}

func TestUsageErrors(t *testing.T) {
	f := newFakeServer(t)
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "no command given"},
		{"unknown command", []string{"frob"}, `unknown command "frob"`},
		{"ls unknown flag", []string{"ls", "--bogus"}, "ls: flag provided but not defined: -bogus"},
		{"ls argument", []string{"ls", "x"}, `ls: unexpected argument "x"`},
		{"kill no id", []string{"kill"}, "kill: want at least one session ID"},
		{"attach no id", []string{"attach"}, "attach: want exactly one session ID"},
		{"attach two ids", []string{"attach", "a", "b"}, "attach: want exactly one session ID"},
		{"attach bad detach key", []string{"attach", "--detach-key", "ctrl-1", "a"}, `want ctrl-X for X in a-z or ]\^_@, or none; got "ctrl-1"`},
		{"attach bad server", []string{"attach", "--server", "ftp://x", "a"}, `invalid server URL "ftp://x"`},
		{"run bad env var", []string{"run", "--env-var", "NOEQUALS", "--", "sh"}, `invalid value "NOEQUALS" for flag -env-var: want K=V`},
		{"run missing flag value", []string{"run", "--cwd"}, "flag needs an argument: -cwd"},
		{"stop argument", []string{"stop", "now"}, `stop takes no arguments, got ["now"]`},
		{"stop unknown flag", []string{"stop", "--force"}, "stop: flag provided but not defined: -force"},
		{"env no command", []string{"env"}, "env: no command given"},
		{"env unknown command", []string{"env", "frob"}, `env: unknown command "frob"`},
		{"env add no type", []string{"env", "add"}, "env add: --type is required"},
		{"env add config not object", []string{"env", "add", "--type", "HOST", "--config", "[1]"}, "env add: --config must be a JSON object"},
		{"env add config invalid", []string{"env", "add", "--type", "HOST", "--config", "{"}, "env add: --config must be a JSON object"},
		{"env add config and file", []string{"env", "add", "--type", "HOST", "--config", "{}", "--config-file", "x"}, "not both"},
		{"env rm no id", []string{"env", "rm"}, "env rm: want at least one environment ID"},
		{"kill empty id", []string{"kill", ""}, "kill: a session ID must not be empty"},
		{"ls bad server", []string{"ls", "--server", "box:"}, `invalid server URL "box:": want HOST:PORT, http://HOST:PORT or https://HOST:PORT`},
		{"ls bad server with password", []string{"ls", "--server", "ftp://u:SECRETPW@x"}, `invalid server URL "ftp://u:xxxxx@x"`},
		{"ls unparsable server with password", []string{"ls", "--server", "http://u:SECRETPW@x:%zz"}, `invalid server URL "http://xxxxx@x:%zz"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, tt.args...)
			if code != 2 || !strings.Contains(stderr, "ptyhost: ") || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tt.want)
			}
			if strings.Contains(stderr, "SECRETPW") {
				t.Errorf("stderr %q repeats the password", stderr)
			}
		})
	}
	if r := f.requestsSoFar(); len(r) != 0 {
		t.Errorf("usage errors sent requests: %v", r)
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args  []string
		want  string
		flags bool // the help lists the common flags
	}{
		{[]string{"--help"}, "ptyhost hosts interactive terminal sessions.", false},
		{[]string{"attach", "--help"}, "Usage: ptyhost attach [flags] ID", true},
		{[]string{"attach", "x", "-h"}, "Usage: ptyhost attach [flags] ID", true},
		{[]string{"run", "--help"}, "Usage: ptyhost run [flags] [--] [CMD [ARG...]]", true},
		{[]string{"ls", "-h"}, "Usage: ptyhost ls [flags]", true},
		{[]string{"kill", "--help"}, "Usage: ptyhost kill [flags] ID...", true},
		{[]string{"env", "--help"}, "Usage: ptyhost env COMMAND [flags]", false},
		{[]string{"env", "ls", "--help"}, "Usage: ptyhost env ls [flags]", true},
		{[]string{"env", "add", "--help"}, "Usage: ptyhost env add --type TYPE [flags]", true},
		{[]string{"env", "rm", "--help"}, "Usage: ptyhost env rm [flags] ID...", true},
		{[]string{"env", "show", "--help"}, "Usage: ptyhost env show [flags] ID", true},
		{[]string{"env", "update", "--help"}, "Usage: ptyhost env update [flags] ID", true},
		{[]string{"env", "health", "--help"}, "Usage: ptyhost env health [flags] [ID...]", true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, stderr := runCmd(t, tt.args...)
			if code != 0 || stderr != "" || !strings.HasPrefix(out, tt.want) {
				t.Fatalf("exit %d, stderr %q, stdout %q; want help starting %q", code, stderr, out, tt.want)
			}
			if !tt.flags {
				return
			}
			for _, flag := range []string{"--server URL", "--token TOKEN", "-h, --help"} {
				if !strings.Contains(out, "\n  "+flag+"\n") {
					t.Errorf("help lacks %q:\n%s", flag, out)
				}
			}
		})
	}
}

// The server address may omit the scheme, as the server prints its
// --listen address: http is assumed.
func TestServerWithoutScheme(t *testing.T) {
	f := newFakeServer(t)
	hostPort := strings.TrimPrefix(f.srv.URL, "http://")
	if code, out, stderr := runCmd(t, "ls", "-q", "--server", hostPort); code != 0 || out != "s1\n" {
		t.Errorf("ls --server %s: exit %d, stdout %q, stderr %q", hostPort, code, out, stderr)
	}
	t.Setenv("PTYHOST_SERVER", hostPort)
	if code, out, stderr := runCmd(t, "ls", "-q"); code != 0 || out != "s1\n" {
		t.Errorf("ls with PTYHOST_SERVER=%s: exit %d, stdout %q, stderr %q", hostPort, code, out, stderr)
	}

	for server, want := range map[string]string{
		"127.0.0.1:7420":          "http://127.0.0.1:7420",
		"localhost:7420/ptyhost/": "http://localhost:7420/ptyhost",
		"[::1]:7420":              "http://[::1]:7420",
		"https://box:8443":        "https://box:8443",
		"ftp://box":               "",
		"box:":                    "",
		"://box":                  "",
		"http://":                 "",
		"box:port":                "",
	} {
		c, err := newClient(server, "")
		switch {
		case want == "" && err == nil:
			t.Errorf("newClient(%q) = %s, want an error", server, c.base)
		case want == "" && !strings.Contains(err.Error(), "want HOST:PORT, http://HOST:PORT or https://HOST:PORT"):
			t.Errorf("newClient(%q): %v", server, err)
		case want != "" && err != nil:
			t.Errorf("newClient(%q): %v", server, err)
		case want != "" && c.base.String() != want:
			t.Errorf("newClient(%q) = %s, want %s", server, c.base, want)
		}
	}
}

// attach resolves a prefix too; an unknown or ambiguous one exits 1
// before any attach.
func TestAttachPrefix(t *testing.T) {
	f := newFakeServer(t)
	f.onlyListed = true
	f.respond("GET /api/v1/sessions", 200, `{"sessions": [{"id": "s1"}, {"id": "s10"}]}`)
	for arg, want := range map[string]string{
		"s":  "ptyhost: session ID prefix s is ambiguous: 2 sessions' IDs start with it (s1, s10); type more of it\n",
		"x1": "ptyhost: session x1 not found (HTTP 404)\n",
	} {
		code, _, stderr := runCmd(t, "attach", "--server", f.srv.URL, arg)
		if code != 1 || stderr != want {
			t.Errorf("attach %s: exit %d, stderr %q; want 1, %q", arg, code, stderr, want)
		}
	}
	if q := f.attachQueries(); len(q) != 0 {
		t.Errorf("attached: %q", q)
	}
	if code, _, stderr := runCmd(t, "attach", "--server", f.srv.URL, ""); code != 2 || stderr != "ptyhost: attach: a session ID must not be empty\n" {
		t.Errorf(`attach "": exit %d, stderr %q`, code, stderr)
	}
}

// TestNotAPtyhostServer: a server that is not ptyhost's, answering 200
// with a page to everything, fails every command with "bad response from
// server" (exit 1), the ones whose answer has no body (env rm, kill)
// included: the API answers those with 204.
func TestNotAPtyhostServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><body>It works!</body></html>\n")
	}))
	t.Cleanup(srv.Close)
	for _, args := range [][]string{
		{"env", "rm", "x"},
		{"kill", "x"},
		{"ls"},
		{"env", "ls"},
	} {
		code, _, stderr := runCmd(t, append(args, "--server", srv.URL)...)
		if code != 1 || !strings.Contains(stderr, "bad response from server") {
			t.Errorf("%s: exit %d, stderr %q; want 1 and bad response from server", strings.Join(args, " "), code, stderr)
		}
	}
}

// TestRequestTimeout: a server that accepts the connection and never
// answers (as one stopped with SIGSTOP) fails a REST call after the
// client's timeout, with a message saying so, instead of hanging it; a
// recording's download is bounded in its wait for the answer and between
// reads, not in total.
func TestRequestTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/sessions/slow/recording":
			// Longer in total than the timeout, never idle that long.
			w.Header().Set("Content-Type", "application/x-asciicast")
			w.WriteHeader(http.StatusOK)
			for i := range 8 {
				fmt.Fprintf(w, "[%d]\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(timeout / 3)
			}
			return
		case "/api/v1/sessions/stalled/recording":
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "[0]\n")
			w.(http.Flusher).Flush()
		}
		select { // never answers (more)
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	c, err := newClient(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != requestTimeout {
		t.Errorf("the default timeout is %v, want %v", c.timeout, requestTimeout)
	}
	c.timeout = timeout
	want := "the ptyhost server at " + srv.URL + " did not answer within 300ms"
	for name, call := range map[string]func(ctx context.Context) error{
		"ls":     func(ctx context.Context) error { _, _, err := c.listSessionsRaw(ctx); return err },
		"kill":   func(ctx context.Context) error { return c.deleteSession(ctx, "s1") },
		"attach": func(ctx context.Context) error { _, err := resolveSessionID(ctx, c, "s1"); return err },
		"rec":    func(ctx context.Context) error { return c.getRecording(ctx, "s1", io.Discard) },
		"rec stalled": func(ctx context.Context) error {
			return c.getRecording(ctx, "stalled", io.Discard)
		},
	} {
		start := time.Now()
		err := call(t.Context())
		if err == nil || !strings.Contains(err.Error(), want) || time.Since(start) > waitTimeout/2 {
			t.Errorf("%s: %v after %v; want %q at once", name, err, time.Since(start), want)
		}
	}
	var out bytes.Buffer
	if err := c.getRecording(t.Context(), "slow", &out); err != nil || strings.Count(out.String(), "\n") != 8 {
		t.Errorf("a slow recording: %v, %q", err, out.String())
	}
}

// A server URL may hold a user and password (for a proxy in front of the
// server that asks for them); messages never show the password.
func TestServerURLPasswordHidden(t *testing.T) {
	code, _, stderr := runCmd(t, "ls", "--server", "http://u:SECRETPW@127.0.0.1:1")
	if code != 1 || !strings.Contains(stderr, "cannot reach the ptyhost server at http://u:xxxxx@127.0.0.1:1") || strings.Contains(stderr, "SECRETPW") {
		t.Errorf("exit %d, stderr %q; want 1, the URL without its password", code, stderr)
	}
}

// A server (hostile, or not ptyhost) whose answer never ends: the client
// reads 16 MiB of it at most and says why it gave up, rather than holding
// all of it in memory (or printing it).
func TestResponseBodyBounded(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"sessions": [{"id": "`)
		chunk := strings.Repeat("A", 64<<10)
		for sent.Load() < 64<<20 {
			n, err := io.WriteString(w, chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, `", "status": "ACTIVE"}]}`)
	}))
	defer srv.Close()
	code, stdout, stderr := runCmd(t, "ls", "-q", "--server", srv.URL)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "bad response from server: larger than 16 MiB") {
		t.Fatalf("ls against an endless answer: exit %d, stdout %d bytes, stderr %.300q; want 1 and the reason", code, len(stdout), stderr)
	}
	if n := sent.Load(); n >= 64<<20 {
		t.Fatalf("the client read all %d MiB", n>>20)
	}
}

// The token never crosses the network in the clear unless the user says
// so: with a token, http:// to a host beyond loopback is refused before
// any request (exit 2, saying what to do), unless --token-over-http or
// PTYHOST_TOKEN_OVER_HTTP. Loopback, https:// and no token at all are
// not refused.
func TestTokenNotSentInClearBeyondLoopback(t *testing.T) {
	t.Setenv("PTYHOST_TOKEN_OVER_HTTP", "")
	t.Setenv("PTYHOST_SERVER", "")
	t.Setenv("PTYHOST_TOKEN", "")
	client := func(f clientFlags) (*client, error) { return f.client() }
	// Names the HTTP client may send through HTTP_PROXY, or DNS may resolve
	// anywhere, are not loopback, however they read.
	for _, server := range []string{"http://192.0.2.1:7420", "192.0.2.1:7420", "http://ptyhost.example.com", "http://[2001:db8::1]:7420", "http://localhost.example.com:7420",
		"http://127.0.0.1.example.com:7420", "http://LOCALHOST:7420", "http://localhost.:7420", "http://ptyhost.localhost:7420", "http://0.0.0.0:7420", "http://[::ffff:192.0.2.1]:7420"} {
		_, err := client(clientFlags{server: server, token: "secret-0123456789"})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "the token would cross the network in the clear") || strings.Contains(err.Error(), "secret-0123456789") {
			t.Errorf("%s with a token: %v; want the refusal, without the token", server, err)
		}
		if c, err := client(clientFlags{server: server, token: "secret-0123456789", tokenOverHTTP: true}); err != nil || c.token != "secret-0123456789" {
			t.Errorf("%s with --token-over-http: %v", server, err)
		}
		if _, err := client(clientFlags{server: server}); err != nil {
			t.Errorf("%s without a token: %v", server, err)
		}
	}
	t.Setenv("PTYHOST_TOKEN_OVER_HTTP", "1")
	if _, err := client(clientFlags{server: "http://192.0.2.1:7420", token: "secret-0123456789"}); err != nil {
		t.Errorf("with PTYHOST_TOKEN_OVER_HTTP=1: %v", err)
	}
	t.Setenv("PTYHOST_TOKEN_OVER_HTTP", "")
	for _, server := range []string{"http://127.0.0.1:7420", "127.0.0.2:7420", "http://[::1]:7420", "http://[::ffff:127.0.0.1]:7420", "http://localhost:7420", "http://user:pw@127.0.0.1:7420", "https://ptyhost.example.com", "https://192.0.2.1:7420"} {
		if _, err := client(clientFlags{server: server, token: "secret-0123456789"}); err != nil {
			t.Errorf("%s with a token: %v; want no refusal", server, err)
		}
	}

	// Through the command: refused with status 2, and no request made.
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, http.StatusOK, `{"sessions": []}`)
	}))
	defer srv.Close()
	t.Setenv("PTYHOST_TOKEN", "secret-0123456789")
	code, _, stderr := runCmd(t, "ls", "--server", "http://192.0.2.1:1")
	if code != 2 || !strings.Contains(stderr, "--token-over-http") || strings.Contains(stderr, "secret-0123456789") {
		t.Errorf("ls to 192.0.2.1 over http with a token: exit %d, stderr %q; want 2 and the way out", code, stderr)
	}
	if code, _, stderr := runCmd(t, "ls", "--server", srv.URL); code != 0 || hits.Load() != 1 {
		t.Errorf("ls to the loopback server with a token: exit %d, stderr %q, %d requests", code, stderr, hits.Load())
	}
}

// Every server the token check lets through over http:// is one the HTTP
// client reaches directly, never through HTTP_PROXY, which would get the
// token in the clear: the check's idea of loopback is the transport's.
func TestTokenLoopbackIsNeverProxied(t *testing.T) {
	t.Setenv("PTYHOST_TOKEN_OVER_HTTP", "")
	t.Setenv("PTYHOST_SERVER", "")
	t.Setenv("PTYHOST_TOKEN", "")
	proxyFor := (&httpproxy.Config{HTTPProxy: "http://proxy.example:3128"}).ProxyFunc()
	for _, server := range []string{
		"http://127.0.0.1:7420", "http://[::1]:7420", "http://localhost:7420", "http://[::ffff:127.0.0.1]:7420",
		"http://LOCALHOST:7420", "http://localhost.:7420", "http://ptyhost.localhost:7420", "http://Localhost:7420",
	} {
		c, err := (&clientFlags{server: server, token: "secret-0123456789"}).client()
		if err != nil {
			continue // refused: the token goes nowhere
		}
		if p, _ := proxyFor(c.base); p != nil {
			t.Errorf("%s passes as loopback, yet the client sends its requests, token and all, to the proxy %s", server, p)
		}
	}
}

// PTYHOST_TOKEN_OVER_HTTP that is no boolean is refused, naming the
// variable, rather than read as false.
func TestTokenOverHTTPVariableBad(t *testing.T) {
	t.Setenv("PTYHOST_SERVER", "")
	t.Setenv("PTYHOST_TOKEN", "")
	t.Setenv("PTYHOST_TOKEN_OVER_HTTP", "yes")
	_, err := (&clientFlags{server: "http://192.0.2.1:7420", token: "secret-0123456789"}).client()
	var ue usageError
	if !errors.As(err, &ue) || err.Error() != `PTYHOST_TOKEN_OVER_HTTP: "yes": want true or false (1 or 0)` {
		t.Errorf("PTYHOST_TOKEN_OVER_HTTP=yes: %v; want a usage error naming the variable", err)
	}
	if _, err := (&clientFlags{server: "http://192.0.2.1:7420", token: "secret-0123456789", tokenOverHTTP: true}).client(); err != nil {
		t.Errorf("--token-over-http, PTYHOST_TOKEN_OVER_HTTP=yes: %v; want the flag to win", err)
	}
	t.Setenv("PTYHOST_TOKEN_OVER_HTTP", "true")
	if _, err := (&clientFlags{server: "http://192.0.2.1:7420", token: "secret-0123456789"}).client(); err != nil {
		t.Errorf("PTYHOST_TOKEN_OVER_HTTP=true: %v", err)
	}
}
