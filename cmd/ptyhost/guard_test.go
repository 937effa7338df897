package main

// The request guard through the real server and the real HOST plugin:
// what a web page can make a browser send is refused, with and without a
// token, and what the CLI, curl and allowed pages send passes.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// rawRequest sends a request exactly as given: hdr may hold "Host".
func rawRequest(t *testing.T, s *e2etest.Server, method, path, body string, hdr map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 && resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, out, resp.Header
}

func serverPort(t *testing.T, s *e2etest.Server) string {
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// sessionCount is the number of sessions the server has a record of.
func sessionCount(t *testing.T, s *e2etest.Server) int {
	t.Helper()
	code, out := s.Request(t, "GET", "/api/v1/sessions", nil)
	list, ok := out["sessions"].([]any)
	if code != 200 || !ok {
		t.Fatalf("list: %d %v", code, out)
	}
	return len(list)
}

// hostClient is an HTTP client that sends host as the Host header; nil
// (http.DefaultClient) if host is empty.
func hostClient(host string) *http.Client {
	if host == "" {
		return nil
	}
	return &http.Client{Transport: hostTransport(host)}
}

type hostTransport string

func (h hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = string(h)
	return http.DefaultTransport.RoundTrip(r)
}

// waitFile waits for path to exist.
func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestE2EBrowserCannotRunCommands is issue 8's remote code execution: a
// page on any site POSTs a session as text/plain (no preflight), or as
// JSON from another origin, or through a rebound name. None of it may
// start a process, with or without a token.
func TestE2EBrowserCannotRunCommands(t *testing.T) {
	for _, withToken := range []bool{false, true} {
		name := "no token"
		var extra []string
		if withToken {
			name, extra = "token", []string{"--token", "t0ken-t0ken-t0ken"}
		}
		t.Run(name, func(t *testing.T) {
			s := startServer(t, extra...)
			auth := map[string]string{}
			if withToken {
				auth["Authorization"] = "Bearer t0ken-t0ken-t0ken"
			}
			dir := t.TempDir()
			pwned := filepath.Join(dir, "pwned")
			attack := `{"environment_id":"host","command":["/bin/sh","-c","id > ` + pwned + `"]}`
			evil := "evil.example:" + serverPort(t, s)
			for _, tt := range []struct {
				name string
				hdr  map[string]string
				want int
			}{
				{"the issue's text/plain request", map[string]string{"Content-Type": "text/plain"}, 415},
				{"text/plain as a browser sends it", map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, 403},
				{"text/plain from the server's own origin", map[string]string{"Content-Type": "text/plain", "Origin": s.URL, "Sec-Fetch-Site": "same-origin"}, 415},
				{"form", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
				{"no content type", map[string]string{}, 415},
				{"JSON from another origin", map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, 403},
				{"JSON from another port", map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.1:1"}, 403},
				{"JSON, cross-site fetch", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403},
				{"DNS rebinding", map[string]string{"Content-Type": "application/json", "Host": evil, "Origin": "http://" + evil, "Sec-Fetch-Site": "same-origin"}, 421},
			} {
				for k, v := range auth {
					tt.hdr[k] = v
				}
				code, out, _ := rawRequest(t, s, "POST", "/api/v1/sessions", attack, tt.hdr)
				if msg, _ := out["error"].(string); code != tt.want || msg == "" {
					t.Errorf("%s: %d %v, want %d with an error message", tt.name, code, out, tt.want)
				}
			}
			if n := sessionCount(t, s); n != 0 {
				t.Errorf("%d session(s) exist after refused creates", n)
			}
			// The same command sent as the CLI sends it runs: had a refused
			// request started it, its file would be there by now too.
			control := filepath.Join(dir, "control")
			s.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "id > " + control}})
			waitFile(t, control)
			if _, err := os.Stat(pwned); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the attack's command ran: %v", err)
			}
		})
	}
}

// TestE2EGuardAttach: a WebSocket upgrade through a rebound name, or from
// a page of another origin, is refused; the server's own page attaches.
func TestE2EGuardAttach(t *testing.T) {
	s := startServer(t)
	id := s.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "echo ready; exec cat"}})
	port := serverPort(t, s)
	dial := func(host string, hdr http.Header) (*wsproto.Conn, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		return wsproto.Dial(ctx, s.AttachURL(id), wsproto.DialOptions{Header: hdr, HTTPClient: hostClient(host), ReadLimit: -1})
	}
	for _, tt := range []struct {
		name string
		host string
		hdr  http.Header
		want int
	}{
		{"rebinding", "evil.example:" + port, http.Header{"Origin": {"http://evil.example:" + port}}, 421},
		{"another origin", "", http.Header{"Origin": {"http://evil.example:" + port}}, 403},
		{"cross-site fetch", "", http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
	} {
		c, err := dial(tt.host, tt.hdr)
		if err == nil {
			c.Close()
			t.Errorf("%s: attached", tt.name)
			continue
		}
		if he := (*wsproto.HandshakeError)(nil); !errors.As(err, &he) || he.StatusCode != tt.want {
			t.Errorf("%s: %v, want status %d", tt.name, err, tt.want)
		}
	}
	_, out := s.Request(t, "GET", "/api/v1/sessions/"+id, nil)
	if out["active_connections"] != 0.0 {
		t.Errorf("refused upgrades counted as clients: %v", out)
	}
	c, err := dial("", http.Header{"Origin": {s.URL}, "Sec-Fetch-Site": {"same-origin"}})
	if err != nil {
		t.Fatalf("the server's own page: %v", err)
	}
	e2etest.NewTerm(t, c).WaitOutput("ready")
}

// TestE2EAllowedHostAndOrigin: a page of an allowed origin, calling the
// server by an allowed name, creates and attaches.
func TestE2EAllowedHostAndOrigin(t *testing.T) {
	s := startServer(t, "--token", "tok-tok-tok-tok-tok", "--allowed-host", "*.example.test", "--allowed-origin", "app.example.test")
	host := "term.example.test:" + serverPort(t, s)
	hdr := map[string]string{
		"Host": host, "Origin": "https://app.example.test", "Sec-Fetch-Site": "cross-site",
		"Content-Type": "application/json", "Authorization": "Bearer tok-tok-tok-tok-tok",
	}
	code, out, _ := rawRequest(t, s, "POST", "/api/v1/sessions", `{"environment_id":"host","command":["/bin/sh","-c","echo allowed; exec cat"]}`, hdr)
	if code != 201 {
		t.Fatalf("create from the allowed origin: %d %v", code, out)
	}
	id := out["id"].(string)
	t.Cleanup(func() { s.Request(t, "DELETE", "/api/v1/sessions/"+id, nil) })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := wsproto.Dial(ctx, s.AttachURL(id)+"?access_token=tok-tok-tok-tok-tok", wsproto.DialOptions{
		HTTPClient: hostClient(host), ReadLimit: -1,
		Header: http.Header{"Origin": {"https://app.example.test"}, "Sec-Fetch-Site": {"cross-site"}},
	})
	if err != nil {
		t.Fatalf("attach from the allowed origin: %v", err)
	}
	e2etest.NewTerm(t, c).WaitOutput("allowed")

	// Other names and origins are still refused.
	hdr["Host"] = "term.example.other:" + serverPort(t, s)
	if code, out, _ := rawRequest(t, s, "GET", "/api/v1/sessions", "", hdr); code != 421 {
		t.Errorf("other name: %d %v", code, out)
	}
	hdr["Host"], hdr["Origin"] = host, "https://app.example.other"
	if code, out, _ := rawRequest(t, s, "GET", "/api/v1/sessions", "", hdr); code != 403 {
		t.Errorf("other origin: %d %v", code, out)
	}
	// Without --metrics-auth, /metrics needs no token, but is guarded.
	if code, _, _ := rawRequest(t, s, "GET", "/metrics", "", nil); code != 200 {
		t.Errorf("metrics without --metrics-auth: %d", code)
	}
	if code, _, _ := rawRequest(t, s, "GET", "/metrics", "", map[string]string{"Host": "evil.example"}); code != 421 {
		t.Errorf("metrics through a rebound name: %d", code)
	}
	if code, _, _ := rawRequest(t, s, "GET", "/metrics", "", map[string]string{"Sec-Fetch-Site": "cross-site"}); code != 403 {
		t.Errorf("metrics cross-site: %d", code)
	}
}

// TestE2EAuthorization: the Bearer scheme in any case; a bare token, or
// /metrics without the token under --metrics-auth, is refused; the
// read-only token on /metrics is 403, as on a write endpoint.
func TestE2EAuthorization(t *testing.T) {
	s := startServer(t, "--token", "s3cret-s3cret-s3cret", "--read-token", "r3ader-r3ader-r3ader", "--metrics-auth")
	for _, tt := range []struct {
		path, auth string
		want       int
	}{
		{"/api/v1/sessions", "Bearer s3cret-s3cret-s3cret", 200},
		{"/api/v1/sessions", "bearer s3cret-s3cret-s3cret", 200},
		{"/api/v1/sessions", "BEARER s3cret-s3cret-s3cret", 200},
		{"/api/v1/sessions", "s3cret-s3cret-s3cret", 401},
		{"/api/v1/sessions", "Basic czNjcmV0LXMzY3JldC1zM2NyZXQ=", 401},
		{"/api/v1/sessions", "Bearer wrong", 401},
		{"/api/v1/sessions", "", 401},
		{"/metrics", "", 401},
		{"/metrics", "Bearer wrong", 401},
		{"/metrics", "s3cret-s3cret-s3cret", 401},
		{"/metrics", "bearer s3cret-s3cret-s3cret", 200},
		{"/metrics?access_token=s3cret-s3cret-s3cret", "", 200},
		{"/metrics", "Bearer r3ader-r3ader-r3ader", 403},
		{"/metrics?access_token=r3ader-r3ader-r3ader", "", 403},
		{"/api/v1/sessions", "Bearer r3ader-r3ader-r3ader", 200},
		{"/healthz", "", 200},
	} {
		hdr := map[string]string{}
		if tt.auth != "" {
			hdr["Authorization"] = tt.auth
		}
		code, out, h := rawRequest(t, s, "GET", tt.path, "", hdr)
		if code != tt.want {
			t.Errorf("%s with %q: %d %v, want %d", tt.path, tt.auth, code, out, tt.want)
		}
		if code == 401 && (h.Get("WWW-Authenticate") == "" || out["error"] == nil) {
			t.Errorf("%s with %q: 401 without a challenge or a JSON error: %v %v", tt.path, tt.auth, h, out)
		}
		if msg, _ := out["error"].(string); code == 403 && !strings.HasPrefix(msg, "forbidden: the read-only token") {
			t.Errorf("%s with %q: 403 whose error does not start as the API's other 403s to the read-only token: %v", tt.path, tt.auth, out)
		}
	}
	// The CLI sends JSON on its bodiless POST too.
	if code, stdout, stderr := runCmd(t, "plugins", "restart", "--server", s.URL, "--token", "s3cret-s3cret-s3cret", "host"); code != 0 {
		t.Errorf("plugins restart: %d %s %s", code, stdout, stderr)
	}
}

// TestE2EBodyTooLarge: a body over 1 MiB is 413 with a JSON error.
func TestE2EBodyTooLarge(t *testing.T) {
	s := startServer(t)
	body := `{"environment_id":"host","command":["` + strings.Repeat("x", 2<<20) + `"]}`
	code, out, _ := rawRequest(t, s, "POST", "/api/v1/sessions", body, map[string]string{"Content-Type": "application/json"})
	if msg, _ := out["error"].(string); code != 413 || !strings.Contains(msg, "larger than") {
		t.Errorf("%d %v, want 413 saying the body is too large", code, out)
	}
	if n := sessionCount(t, s); n != 0 {
		t.Errorf("%d session(s) after the refused create", n)
	}
}

// TestServeGuardSettings: the flags and attributes of the guard.
func TestServeGuardSettings(t *testing.T) {
	clearServeEnv(t)
	t.Setenv("PTYHOST_METRICS_AUTH", "")
	os.Unsetenv("PTYHOST_METRICS_AUTH")
	quiet := stdio{out: io.Discard, err: io.Discard}

	c, err := parseServeFlags([]string{"--listen", "Term.Example.com.:7420", "--token", "x-token-0123456789", "--allowed-host", "*.lan", "--metrics-auth"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.allowedHosts, ",") != "*.lan,term.example.com" || !c.metricsAuth {
		t.Errorf("allowed hosts %q, metrics auth %v", c.allowedHosts, c.metricsAuth)
	}
	for _, listen := range []string{"127.0.0.1:7420", "[::1]:7420", ":7420", "localhost:7420"} {
		c, err := parseServeFlags([]string{"--listen", listen, "--token", "x-token-0123456789"}, quiet)
		if err != nil || len(c.allowedHosts) != 0 {
			t.Errorf("--listen %s: allowed hosts %q, %v", listen, c.allowedHosts, err)
		}
	}

	path := writeConfig(t, "token = \"x-token-0123456789\"\nallowed_hosts = [\"ptyhost.lan\"]\nmetrics_auth = true\n")
	c, err = parseServeFlags([]string{"--config", path}, quiet)
	if err != nil || strings.Join(c.allowedHosts, ",") != "ptyhost.lan" || !c.metricsAuth {
		t.Errorf("from the file: %q %v %v", c.allowedHosts, c.metricsAuth, err)
	}
	c, err = parseServeFlags([]string{"--config", path, "--allowed-host", "flag.lan", "--metrics-auth=false"}, quiet)
	if err != nil || strings.Join(c.allowedHosts, ",") != "flag.lan" || c.metricsAuth {
		t.Errorf("flags over the file: %q %v %v", c.allowedHosts, c.metricsAuth, err)
	}
	t.Setenv("PTYHOST_METRICS_AUTH", "false")
	if c, err = parseServeFlags([]string{"--config", path}, quiet); err != nil || c.metricsAuth {
		t.Errorf("variable over the file: %v %v", c.metricsAuth, err)
	}
	t.Setenv("PTYHOST_METRICS_AUTH", "yes")
	if _, err = parseServeFlags([]string{"--token", "x-token-0123456789"}, quiet); err == nil || !strings.Contains(err.Error(), "PTYHOST_METRICS_AUTH: \"yes\": want true or false") {
		t.Errorf("PTYHOST_METRICS_AUTH=yes: %v", err)
	}
	os.Unsetenv("PTYHOST_METRICS_AUTH")

	for _, tt := range []struct {
		name string
		args []string
		file string
		want string
	}{
		{"metrics auth without a token", []string{"--metrics-auth"}, "", "--metrics-auth requires a token"},
		{"host with a port", []string{"--allowed-host", "ptyhost.lan:7420"}, "", "without scheme, port or spaces"},
		{"bad host pattern", []string{"--allowed-host", "[x"}, "", "syntax error in pattern"},
		{"bad origin pattern", []string{"--allowed-origin", "[x"}, "", "syntax error in pattern"},
		{"any host without a token", []string{"--allowed-host", "*"}, "", "lets any web page through"},
		{"any origin without a token", nil, "allowed_origins = [\"https://*\"]\n", "lets any web page through"},
		{"metrics_auth not a bool", nil, "token = \"x-token-0123456789\"\nmetrics_auth = \"yes\"\n", "metrics_auth"},
		{"allowed_hosts not a list", nil, "allowed_hosts = \"x\"\n", "allowed_hosts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeConfig(t, tt.file))
			}
			_, err := parseServeFlags(args, quiet)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
}
