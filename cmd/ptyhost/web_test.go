package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// getPage GETs path of srv without a token and returns the status, the
// headers and the body.
func getPage(t *testing.T, srv *e2etest.Server, path string) (int, http.Header, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// TestE2EWebPage: the real binary serves the page at /, to anyone who may
// reach the server (no token), and not with --web=false.
func TestE2EWebPage(t *testing.T) {
	srv := e2etest.Start(t, e2etest.Options{Args: []string{"--token", "page-test-token-0123"}})
	code, hdr, body := getPage(t, srv, "/")
	if code != 200 {
		t.Fatalf("GET /: %d %q", code, e2etest.Tail([]byte(body), 300))
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET /: Content-Type %q, want text/html", ct)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("GET /: Content-Security-Policy %q, want one with frame-ancestors 'none'", csp)
	}
	if code, _, _ := getPage(t, srv, "/api/v1/sessions"); code != 401 {
		t.Errorf("the API without a token: %d, want 401", code)
	}

	off := e2etest.Start(t, e2etest.Options{Args: []string{"--web=false"}})
	for _, path := range []string{"/", "/assets/app.js"} {
		if code, hdr, body := getPage(t, off, path); code != 404 || hdr.Get("Content-Type") != "application/json" {
			t.Errorf("--web=false, GET %s: %d %s %q, want a JSON 404", path, code, hdr.Get("Content-Type"), body)
		}
	}
}

// TestWebSetting: --web, PTYHOST_WEB and the file's web, in that order,
// default true; a bad value is a usage error that says what is wanted.
func TestWebSetting(t *testing.T) {
	clearServeEnv(t)
	t.Setenv("PTYHOST_WEB", "")
	os.Unsetenv("PTYHOST_WEB")
	off := writeConfig(t, "web = false\n")
	on := writeConfig(t, "web = true\n")
	for _, tt := range []struct {
		name string
		args []string
		env  string // PTYHOST_WEB; "" unset
		want bool
	}{
		{"default", nil, "", true},
		{"flag", []string{"--web=false"}, "", false},
		{"file", []string{"--config", off}, "", false},
		{"variable over file", []string{"--config", off}, "true", true},
		{"variable", nil, "false", false},
		{"flag over variable", []string{"--web"}, "false", true},
		{"flag over file", []string{"--config", off, "--web=true"}, "", true},
		{"flag over variable and file", []string{"--config", on, "--web=false"}, "true", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("PTYHOST_WEB", tt.env)
			}
			c, err := parseServeFlags(tt.args, stdio{out: io.Discard, err: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			if c.web != tt.want {
				t.Errorf("web = %v, want %v", c.web, tt.want)
			}
			if (c.page() != nil) != tt.want {
				t.Errorf("page() = %v with web %v", c.page(), c.web)
			}
		})
	}

	for _, tt := range []struct {
		name, env, file string
		args            []string
		want            string
	}{
		{name: "flag", args: []string{"--web=maybe"}, want: "maybe"},
		{name: "variable", env: "maybe", want: `PTYHOST_WEB: "maybe": want true or false`},
		// HCL's own message, with the attribute's position.
		{name: "file", file: "web = \"maybe\"\n", want: "ptyhost.hcl:1,8: Unsuitable value type; Unsuitable value: a bool is required"},
	} {
		t.Run("bad "+tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("PTYHOST_WEB", tt.env)
			}
			args := tt.args
			if tt.file != "" {
				args = []string{"--config", writeConfig(t, tt.file)}
			}
			_, err := parseServeFlags(args, stdio{out: io.Discard, err: io.Discard})
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(ue.msg, tt.want) {
				t.Errorf("err = %v, want a usage error with %q", err, tt.want)
			}
		})
	}

	code, stdout, _ := runCmd(t, "serve", "--help")
	if code != 0 || !strings.Contains(stdout, "\n  --web\n") || !strings.Contains(stdout, "PTYHOST_WEB") {
		t.Errorf("serve --help lacks --web [PTYHOST_WEB]:\n%s", stdout)
	}
}

// TestE2ETokenNotLogged: a token sent in the query, as browsers must on a
// WebSocket, appears nowhere in the server's log, even at debug level.
func TestE2ETokenNotLogged(t *testing.T) {
	const token = "query-token-4f9c2a71"
	const wrong = "wrong-token-b83e5d02"
	srv := e2etest.Start(t, e2etest.Options{LogLevel: "debug", Args: []string{"--token", token}})
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}})
	ws := wsproto.WSURL(srv.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	events, _, err := websocket.Dial(ctx, ws+"/api/v1/events?access_token="+token, nil)
	if err != nil {
		t.Fatalf("events with ?access_token=: %v", err)
	}
	defer events.CloseNow()
	attach, _, err := websocket.Dial(ctx, srv.AttachURL(id)+"?access_token="+token, &websocket.DialOptions{Subprotocols: []string{wsproto.Subprotocol}})
	if err != nil {
		t.Fatalf("attach with ?access_token=: %v", err)
	}
	defer attach.CloseNow()
	if _, b, err := attach.Read(ctx); err != nil || !strings.Contains(string(b), `"hello"`) {
		t.Fatalf("attach: first message %q, %v", b, err)
	}
	// Destroying the session sends an event and ends the attach.
	if code, _ := srv.Request(t, "DELETE", "/api/v1/sessions/"+id, nil); code != 204 {
		t.Fatalf("destroy: %d", code)
	}
	if _, b, err := events.Read(ctx); err != nil || !strings.Contains(string(b), id) {
		t.Fatalf("events: %q, %v", b, err)
	}
	if _, _, err := websocket.Dial(ctx, ws+"/api/v1/events?access_token="+wrong, nil); err == nil {
		t.Fatal("events with a wrong token: subscribed")
	}
	if code, _, _ := getPage(t, srv, "/api/v1/sessions?access_token="+wrong); code != 401 {
		t.Errorf("a wrong token in the query: %d, want 401", code)
	}
	events.Close(websocket.StatusNormalClosure, "")
	if err := srv.Stop(t, 30*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	log := srv.Stderr()
	if !strings.Contains(log, "level=DEBUG") {
		t.Errorf("the server logged nothing at debug level; the test proves nothing:\n%s", log)
	}
	for _, secret := range []string{token, wrong} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds the token %q:\n%s", secret, log)
		}
	}
}
