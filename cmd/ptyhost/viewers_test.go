package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// viewerEnv lists the variables of the viewer and limit settings; the
// tests here start with them unset.
var viewerEnv = []string{"PTYHOST_READ_TOKEN", "PTYHOST_MAX_CLIENTS", "PTYHOST_SIZE_POLICY"}

func clearViewerEnv(t *testing.T) {
	t.Helper()
	clearServeEnv(t)
	for _, name := range viewerEnv {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
}

func TestViewerSettings(t *testing.T) {
	const fullToken, readToken = "full-token-0123456789", "read-token-0123456789"
	for _, tt := range []struct {
		name    string
		args    []string
		env     map[string]string
		file    string
		want    func(serveConfig) bool
		wantErr string // a part of the error; "" for none
	}{
		{name: "defaults", want: func(c serveConfig) bool { return c.maxClients == 0 && c.sizePolicy == "" && c.readToken == "" }},
		{name: "flags", args: []string{"--token", fullToken, "--read-token", readToken, "--max-clients", "3", "--size-policy", "smallest"},
			want: func(c serveConfig) bool {
				return c.readToken == readToken && c.maxClients == 3 && c.sizePolicy == core.SizeSmallest
			}},
		{name: "variables", args: []string{"--token", fullToken}, env: map[string]string{"PTYHOST_READ_TOKEN": readToken, "PTYHOST_MAX_CLIENTS": "2", "PTYHOST_SIZE_POLICY": "latest"},
			want: func(c serveConfig) bool {
				return c.readToken == readToken && c.maxClients == 2 && c.sizePolicy == core.SizeLatest
			}},
		{name: "file", file: "token = \"" + fullToken + "\"\nread_token = \"" + readToken + "\"\nmax_clients = 5\nsize_policy = \"smallest\"\n",
			want: func(c serveConfig) bool {
				return c.readToken == readToken && c.maxClients == 5 && c.sizePolicy == core.SizeSmallest
			}},
		{name: "flag wins over the file", args: []string{"--max-clients", "0"}, file: "max_clients = 5\n",
			want: func(c serveConfig) bool { return c.maxClients == 0 }},
		{name: "negative max clients", args: []string{"--max-clients", "-1"}, wantErr: `"-1": want a whole number`},
		{name: "max clients not a number", args: []string{"--max-clients", "many"}, wantErr: `"many": want a whole number`},
		{name: "bad variable", env: map[string]string{"PTYHOST_MAX_CLIENTS": "1.5"}, wantErr: `PTYHOST_MAX_CLIENTS: "1.5"`},
		{name: "unknown size policy", args: []string{"--size-policy", "largest"}, wantErr: `"largest": want latest or smallest`},
		{name: "empty size policy", args: []string{"--size-policy", ""}, wantErr: `"": want latest or smallest`},
		{name: "bad size policy in the file", file: "size_policy = \"biggest\"\n", wantErr: "size_policy"},
		{name: "negative max clients in the file", file: "max_clients = -2\n", wantErr: "max_clients"},
		{name: "read token without token", args: []string{"--read-token", readToken}, wantErr: "--read-token needs --token"},
		{name: "read token equal to token", args: []string{"--token", fullToken, "--read-token", fullToken}, wantErr: "must differ"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clearViewerEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeConfig(t, tt.file)}, args...)
			}
			c, err := parseServeFlags(args, stdio{out: io.Discard, err: io.Discard})
			if tt.wantErr != "" {
				var ue usageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want a usage error with %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), `"t"`) || strings.Contains(err.Error(), `"r"`) {
					t.Errorf("the error names a token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.want(c) {
				t.Errorf("config %+v", c)
			}
		})
	}
}

// waitSize waits until tm was told the terminal is cols×rows.
func waitSize(t *testing.T, tm *e2etest.Term, cols, rows int) {
	t.Helper()
	err := tm.Until(func() bool {
		n := len(tm.Control)
		for i := n - 1; i >= 0; i-- {
			if m := tm.Control[i]; m.Type == wsproto.TypeResize {
				return m.Cols == cols && m.Rows == rows
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("waiting to be told the size %dx%d (told %v): %v", cols, rows, tm.Control, err)
	}
}

// The size policies through the real server and the HOST plugin: the
// shell sees the size the policy picks, and the size the remaining client
// asked for once the other leaves.
func TestE2ESizePolicy(t *testing.T) {
	for _, tt := range []struct {
		policy           string
		aCols, aRows     int // client a's ask
		bCols, bRows     int // then client b's
		wantCols, wantRs int // the shell's size with both
	}{
		{"latest", 100, 30, 120, 40, 120, 40},
		{"smallest", 100, 30, 80, 50, 80, 30},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			srv := startServer(t, "--size-policy", tt.policy)
			id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}})
			a, b := srv.Attach(t, id), srv.Attach(t, id)
			viewer := attachWith(t, srv, id, wsproto.DialOptions{Token: srv.Token, ReadOnly: true})
			a.Resize(tt.aCols, tt.aRows)
			waitSize(t, b, tt.aCols, tt.aRows)
			b.Resize(tt.bCols, tt.bRows)
			waitSize(t, a, tt.wantCols, tt.wantRs)
			waitSize(t, viewer, tt.wantCols, tt.wantRs)
			a.Send("echo both: $(stty size)\r")
			a.WaitOutput(fmt.Sprintf("both: %d %d", tt.wantRs, tt.wantCols))

			// A viewer leaving changes nothing; b leaving gives a its size.
			viewer.Conn.CloseWith(wsproto.CloseNormal, "")
			b.Conn.CloseWith(wsproto.CloseNormal, "")
			waitSize(t, a, tt.aCols, tt.aRows)
			a.Send("echo alone: $(stty size)\r")
			a.WaitOutput(fmt.Sprintf("alone: %d %d", tt.aRows, tt.aCols))
			if _, rec := srv.Request(t, "GET", "/api/v1/sessions/"+id, nil); rec["cols"] != float64(tt.aCols) || rec["rows"] != float64(tt.aRows) {
				t.Errorf("the record's size after b left: %v", rec)
			}
		})
	}
}

// attachWith attaches to session id with opts and fails the test when
// refused.
func attachWith(t *testing.T, srv *e2etest.Server, id string, opts wsproto.DialOptions) *e2etest.Term {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	opts.ReadLimit = -1
	c, err := wsproto.Dial(ctx, srv.AttachURL(id), opts)
	if err != nil {
		t.Fatalf("attach %s with %+v: %v", id, opts, err)
	}
	return e2etest.NewTerm(t, c)
}

// refusal dials session id and returns the refused upgrade's status, or
// fails the test if it attached.
func refusal(t *testing.T, srv *e2etest.Server, id, query string, opts wsproto.DialOptions) *wsproto.HandshakeError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := wsproto.Dial(ctx, srv.AttachURL(id)+query, opts)
	if err == nil {
		c.Close()
		t.Fatalf("attached to %s%s with %+v; want a refusal", id, query, opts)
	}
	var he *wsproto.HandshakeError
	if !errors.As(err, &he) {
		t.Fatalf("dial %s%s: %v, want a refused upgrade", id, query, err)
	}
	return he
}

// The read-only token and read-only attach through the real server and the
// HOST plugin: the viewer sees the shell and cannot type into it or
// change anything; an attacker without a token gets nothing.
func TestE2EReadOnlyToken(t *testing.T) {
	srv := startServer(t, "--token", "full-secret-0123456789", "--read-token", "view-secret-0123456789")
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}})
	writer := srv.Attach(t, id)
	viewer := attachWith(t, srv, id, wsproto.DialOptions{Token: "view-secret-0123456789", ReadOnly: true})

	mark := t.TempDir() + "/typed"
	viewer.Send("touch " + mark + "\r")
	if m := viewer.WaitControl(wsproto.TypeError); m.Message != wsproto.MsgReadOnlyInput {
		t.Errorf("error message %q", m.Message)
	}
	viewer.Resize(50, 10)
	if m := viewer.WaitControl(wsproto.TypeError); m.Message != wsproto.MsgReadOnlyResize {
		t.Errorf("error message %q", m.Message)
	}
	writer.Send("echo from-$((40+2))\r")
	viewer.WaitOutput("from-42")
	if _, err := os.Stat(mark); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the viewer's input ran: %v", err)
	}

	for _, tt := range []struct {
		name, query string
		opts        wsproto.DialOptions
		want        int
	}{
		{"read token, write mode", "", wsproto.DialOptions{Token: "view-secret-0123456789"}, http.StatusForbidden},
		{"read token, mode=write", "?mode=write", wsproto.DialOptions{Token: "view-secret-0123456789"}, http.StatusForbidden},
		{"no token", "", wsproto.DialOptions{ReadOnly: true}, http.StatusUnauthorized},
		{"wrong token", "", wsproto.DialOptions{Token: "view-secret-012345678X", ReadOnly: true}, http.StatusUnauthorized},
		{"bad mode", "?mode=admin", wsproto.DialOptions{Token: "full-secret-0123456789"}, http.StatusBadRequest},
		{"attacker's page", "", wsproto.DialOptions{ReadOnly: true, Header: http.Header{"Origin": {"http://evil.example"}}}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if he := refusal(t, srv, id, tt.query, tt.opts); he.StatusCode != tt.want {
				t.Errorf("refused with %d %q, want %d", he.StatusCode, he.Message, tt.want)
			}
		})
	}

	// REST: the read token lists, and changes nothing.
	for _, tt := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/api/v1/sessions", "", http.StatusOK},
		{"GET", "/api/v1/sessions/" + id, "", http.StatusOK},
		{"DELETE", "/api/v1/sessions/" + id, "", http.StatusForbidden},
		{"POST", "/api/v1/sessions", `{"command":["/bin/true"]}`, http.StatusForbidden},
	} {
		req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer view-secret-0123456789")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s with the read token: %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
	}
	writer.Send("echo still-$((1+1))\r")
	viewer.WaitOutput("still-2")
	if strings.Contains(srv.Stderr(), "view-secret-0123456789") || strings.Contains(srv.Stderr(), "full-secret-0123456789") {
		t.Errorf("a token was logged:\n%s", srv.Stderr())
	}
}

// --max-clients: the next client is refused with 409 and the reason
// before the upgrade, unless it is a writer and a viewer can give way:
// that viewer's connection is closed with 1013 and the reason.
func TestE2EMaxClients(t *testing.T) {
	srv := startServer(t, "--max-clients", "2")
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}})
	a := srv.Attach(t, id)
	viewer := attachWith(t, srv, id, wsproto.DialOptions{ReadOnly: true})
	he := refusal(t, srv, id, "?mode=read", wsproto.DialOptions{ReadOnly: true})
	if he.StatusCode != http.StatusConflict || !strings.Contains(he.Message, "too many clients") || !strings.Contains(he.Message, "max clients 2") {
		t.Fatalf("third client, a viewer: %d %q, want 409 with the reason", he.StatusCode, he.Message)
	}

	b := srv.Attach(t, id)
	err := viewer.WaitEnd()
	if code, reason, ok := wsproto.CloseStatus(err); !ok || code != wsproto.CloseTryAgainLater || reason != wsproto.CloseReasonDisplaced {
		t.Fatalf("the viewer's connection ended with %v, want 1013 %q", err, wsproto.CloseReasonDisplaced)
	}
	he = refusal(t, srv, id, "", wsproto.DialOptions{})
	if he.StatusCode != http.StatusConflict || !strings.Contains(he.Message, "max clients 2") {
		t.Fatalf("third writer: %d %q, want 409 with the reason", he.StatusCode, he.Message)
	}
	b.Send("echo still-$((40+2))\n")
	a.WaitOutput("still-42")

	a.Conn.CloseWith(wsproto.CloseNormal, "")
	e2etest.Eventually(t, 10*time.Second, "a place to free up", func() bool {
		_, rec := srv.Request(t, "GET", "/api/v1/sessions/"+id, nil)
		return rec["active_connections"] == 1.0
	}, nil)
	srv.Attach(t, id)
}
