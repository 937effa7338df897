package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core/api"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// Attach anywhere: requests about a session that another node runs are
// forwarded to it (core/api/cluster.go). These tests run real nodes, the
// ptyhost binary, on one PostgreSQL database.

// startReachableNode starts node name of a cluster on dsn advertising the
// address it listens on, so that the other nodes reach it; args are more
// flags for serve.
func startReachableNode(t *testing.T, dsn, name string, args ...string) *e2etest.Server {
	t.Helper()
	return e2etest.Start(t, reachableNodeOptions(t, dsn, name, args...))
}

// reachableNodeOptions are startReachableNode's options.
func reachableNodeOptions(t *testing.T, dsn, name string, args ...string) e2etest.Options {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	o := nodeOptions(dsn, name)
	o.Args = append(o.Args, "--listen", addr, "--advertise-url", "http://"+addr) // later flags win
	o.Args = append(o.Args, args...)
	return o
}

// createOn creates a session running command on node srv, named name: in
// its own host-NAME environment where there is one, else in host, and
// fails the test unless the session runs there.
func createOn(t *testing.T, srv *e2etest.Server, name string, command ...string) string {
	t.Helper()
	env := "host"
	if code, _, err := srv.Do("GET", "/api/v1/environments/host-"+name, nil); err == nil && code == http.StatusOK {
		env = "host-" + name
	}
	id := srv.CreateSession(t, map[string]any{"environment_id": env, "command": command})
	if rec := srv.Session(t, id); rec["node"] != name {
		t.Fatalf("session %s runs on %v, want %s", id, rec["node"], name)
	}
	return id
}

// request sends a request to srv with the headers hdr (name, value
// pairs; "Host" sets the Host), as it is (rawRequest), and returns its
// status and error message.
func request(t *testing.T, srv *e2etest.Server, method, path string, hdr ...string) (int, string) {
	t.Helper()
	h := map[string]string{}
	if method == "POST" {
		h["Content-Type"] = "application/json"
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		h[hdr[i]] = hdr[i+1]
	}
	code, body, _ := rawRequest(t, srv, method, path, "", h)
	msg, _ := body["error"].(string)
	return code, msg
}

// attachThrough attaches to b's session id (which printed "hello from b"
// and then echoes) through node via, named name: its output arrives, input
// typed there is echoed, and the offsets count every byte from 0.
func attachThrough(t *testing.T, via *e2etest.Server, name, id string) *e2etest.Term {
	t.Helper()
	term := via.Attach(t, id)
	term.WaitOutput("hello from b")
	term.Send("ping\r")
	term.WaitOutput("ping\r\nping\r\n")
	if got, want := term.Conn.Offset(), int64(len(term.Out)); term.Hello().Offset != 0 || got != want {
		t.Fatalf("through %s: hello at %d, offset %d after %d bytes", name, term.Hello().Offset, got, want)
	}
	return term
}

// checkResumed attaches to session id at offset from on its owner and
// through another node, via, and fails the test unless both get a hello
// at from and the bytes of full, what a client attached from 0 got, from
// there. It returns the two clients.
func checkResumed(t *testing.T, owner, via *e2etest.Server, id string, full []byte, from int64) (direct, through *e2etest.Term) {
	t.Helper()
	direct, through = owner.AttachAt(t, id, from), via.AttachAt(t, id, from)
	for name, tm := range map[string]*e2etest.Term{"on the owner": direct, "through another node": through} {
		if err := tm.Until(func() bool { return int64(len(tm.Out)) >= int64(len(full))-from }); err != nil {
			t.Fatalf("resumed %s: %v", name, err)
		}
		if tm.Hello().Offset != from || !bytes.Equal(tm.Out, full[from:]) {
			t.Errorf("resumed at %d %s: hello at %d, %q; want %q", from, name, tm.Hello().Offset, tm.Out, full[from:])
		}
	}
	return direct, through
}

// wantClose fails the test unless err ended a connection with code and
// reason.
func wantClose(t *testing.T, what string, err error, code int, reason string) {
	t.Helper()
	if c, r, ok := wsproto.CloseStatus(err); !ok || c != code || r != reason {
		t.Errorf("%s: %v; want close %d %q", what, err, code, reason)
	}
}

// TestForwardTwoNodes: a session on b, attached through a, shows b's
// output and takes input, with byte-exact offsets (a resume through a
// gets the same bytes as one on b); resizes, the compatibility endpoint,
// restart and DELETE through a reach b; the end's close code passes
// untouched. A wrong cluster secret is refused and logged without its
// value; a client of a cannot claim the full scope with the read-only
// token; a forwarded request is not forwarded again.
func TestForwardTwoNodes(t *testing.T) {
	const token, readToken = "forward-test-token", "forward-test-read-token"
	dsn, _ := postgresSchemaDSN(t)
	a := startReachableNode(t, dsn, "a", "--token", token, "--read-token", readToken)
	b := startReachableNode(t, dsn, "b", "--token", token, "--read-token", readToken)
	id := createOn(t, b, "b", "/bin/sh", "-c", `printf 'hello from b\n'; exec cat`)

	ta := attachThrough(t, a, "a", id)
	// A resume at an offset, through a and on b itself: the same bytes.
	direct, _ := checkResumed(t, b, a, id, ta.Out, 3)
	ta.Resize(111, 33)
	if msg := direct.WaitControl(wsproto.TypeResize); msg.Cols != 111 || msg.Rows != 33 {
		t.Errorf("a resize through a, seen on b: %+v", msg)
	}

	// The compatibility endpoint, through a.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	compat, _, err := websocket.Dial(ctx, wsproto.WSURL(a.URL)+"/ws/terminal/"+id+"?access_token="+token, nil)
	if err != nil {
		t.Fatalf("the compatibility endpoint through a: %v", err)
	}
	_, first, err := compat.Read(ctx)
	if err != nil || !bytes.Contains(first, []byte(`"type":"scrollback"`)) || !bytes.Contains(first, []byte("hello from b")) {
		t.Errorf("the compatibility endpoint through a: first message %s, %v", first, err)
	}
	compat.CloseNow()

	// A browser's attach through a, its token as a subprotocol: b chooses
	// the endpoint's own and sends the session's hello.
	browser, _, err := websocket.Dial(ctx, a.AttachURL(id), &websocket.DialOptions{
		Subprotocols: []string{wsproto.Subprotocol, wsproto.TokenSubprotocol(token)}})
	if err != nil {
		t.Fatalf("an attach through a with the token subprotocol: %v", err)
	}
	if got := browser.Subprotocol(); got != wsproto.Subprotocol {
		t.Errorf("an attach through a with the token subprotocol chose %q, want %q", got, wsproto.Subprotocol)
	}
	if _, first, err := browser.Read(ctx); err != nil || !bytes.Contains(first, []byte(`"type":"hello"`)) {
		t.Errorf("an attach through a with the token subprotocol: first message %s, %v", first, err)
	}
	browser.CloseNow()

	// The scope: a's read-only client claiming the full scope is still
	// read-only on b.
	_, err = wsproto.Dial(ctx, a.AttachURL(id), wsproto.DialOptions{Token: readToken,
		Header: http.Header{api.HeaderClusterScope: {api.ScopeFull}}})
	var refused *wsproto.HandshakeError
	if !errors.As(err, &refused) || refused.StatusCode != http.StatusForbidden {
		t.Errorf("a write attach through a with the read-only token and a forged scope: %v, want 403", err)
	}
	if code, _ := request(t, a, "DELETE", "/api/v1/sessions/"+id, "Authorization", "Bearer "+readToken,
		api.HeaderClusterScope, api.ScopeFull); code != http.StatusForbidden {
		t.Errorf("DELETE through a with the read-only token and a forged scope: %d, want 403", code)
	}
	// The secret: a wrong one is refused and logged without its value; the
	// right one stands for the token and the Host check; a forwarded
	// request is not forwarded again.
	const forged = "forged-cluster-secret-0123456789"
	if code, _ := request(t, b, "GET", "/api/v1/sessions/"+id, api.HeaderClusterSecret, forged,
		api.HeaderClusterScope, api.ScopeFull); code != http.StatusUnauthorized {
		t.Errorf("a forged cluster secret on b: %d, want 401", code)
	}
	if code, msg := request(t, b, "GET", "/api/v1/sessions/"+id, "Host", "evil.example",
		api.HeaderClusterSecret, testClusterSecret, api.HeaderClusterScope, api.ScopeRead); code != http.StatusOK {
		t.Errorf("the cluster secret on b, without a token, Host evil.example: %d %q, want 200", code, msg)
	}
	if code, msg := request(t, a, "POST", "/api/v1/sessions/"+id+"/restart",
		api.HeaderClusterSecret, testClusterSecret, api.HeaderClusterScope, api.ScopeFull); code != http.StatusLoopDetected {
		t.Errorf("a forwarded request for b's session sent to a: %d %q, want 508", code, msg)
	}

	// Restart and DELETE through a reach b.
	code, rec := a.Request(t, "POST", "/api/v1/sessions/"+id+"/restart", map[string]any{})
	if code != http.StatusOK || rec["node"] != "b" {
		t.Errorf("restart through a: %d %v", code, rec)
	}
	ta.WaitControl(wsproto.TypeRestarted)
	if err := ta.Until(func() bool { return bytes.Count(ta.Out, []byte("hello from b")) == 2 }); err != nil {
		t.Errorf("after the restart through a: %v", err)
	}
	ta.Send("\x04")
	wantClose(t, "the session's end through a", ta.WaitEnd(), wsproto.CloseNormal, wsproto.CloseReasonExited)
	if n := len(ta.Control); n == 0 || ta.Control[n-1].Type != wsproto.TypeExit {
		t.Errorf("control messages through a: %+v, want the exit last", ta.Control)
	}

	other := createOn(t, b, "b", "sleep", "3600")
	if code, _ := a.Request(t, "DELETE", "/api/v1/sessions/"+other, nil); code != http.StatusNoContent {
		t.Errorf("DELETE through a: %d", code)
	}
	if rec := b.Session(t, other); rec["status"] != "TERMINATED" {
		t.Errorf("b's session after DELETE through a: %v", rec)
	}

	for name, log := range map[string]string{"a": a.Stderr(), "b": b.Stderr()} {
		if strings.Contains(log, testClusterSecret) || strings.Contains(log, forged) {
			t.Errorf("a cluster secret is in %s's log:\n%s", name, log)
		}
	}
	if !strings.Contains(b.Stderr(), "wrong cluster secret") {
		t.Errorf("b's log does not tell of the wrong cluster secret:\n%s", b.Stderr())
	}
}

// TestForwardNodeKilled: kill -9 of b closes a client attached through a
// to b's session with 4503 node_lost; a new attach through a is closed the
// same way, a DELETE is 503, and a's own session goes on.
func TestForwardNodeKilled(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	a := startReachableNode(t, dsn, "a")
	b := startReachableNode(t, dsn, "b")
	id := createOn(t, b, "b", "/bin/sh", "-c", `printf 'hello from b\n'; exec cat`)
	own := createOn(t, a, "a", "/bin/sh", "-c", `printf 'hello from a\n'; exec cat`)
	ta, mine := a.Attach(t, id), a.Attach(t, own)
	ta.WaitOutput("hello from b")
	mine.WaitOutput("hello from a")

	b.Kill(t)
	killed := time.Now()
	wantClose(t, "b killed", ta.WaitEnd(), api.CloseNodeLost, api.CloseReasonNodeLost)
	t.Logf("the client through a was closed %v after b's SIGKILL", time.Since(killed).Round(time.Millisecond))

	// Until b's sessions are recorded lost, a says b is lost.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := wsproto.Dial(ctx, a.AttachURL(id), wsproto.DialOptions{})
	code, msg := request(t, a, "DELETE", "/api/v1/sessions/"+id)
	if st := a.Session(t, id)["status"]; st == "ACTIVE" || st == "IDLE" {
		wantClose(t, "an attach through a to killed b", err, api.CloseNodeLost, api.CloseReasonNodeLost)
		if code != http.StatusServiceUnavailable || !strings.Contains(msg, "node b") {
			t.Errorf("DELETE through a of killed b's session: %d %q, want 503", code, msg)
		}
	} else {
		t.Logf("b's session was recorded %v before the checks; skipped them", st)
	}

	mine.Send("still here\r")
	mine.WaitOutput("still here\r\nstill here\r\n")
}

// TestForwardPartition: b stops (SIGSTOP) with its connection to a open,
// as a partition would leave it: once b's lease expires, a closes the
// client attached through it to b's session with 4503 node_lost.
func TestForwardPartition(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	a := startReachableNode(t, dsn, "a")
	b := startReachableNode(t, dsn, "b")
	id := createOn(t, b, "b", "/bin/sh", "-c", `printf 'hello from b\n'; exec cat`)
	ta := a.Attach(t, id)
	ta.WaitOutput("hello from b")

	b.Signal(t, syscall.SIGSTOP)
	t.Cleanup(func() { b.Kill(t) })
	stopped := time.Now()
	wantClose(t, "b stopped", ta.WaitEnd(), api.CloseNodeLost, api.CloseReasonNodeLost)
	took := time.Since(stopped)
	t.Logf("the client through a was closed %v after b stopped (lease %v, check every %v)", took.Round(time.Millisecond), testNodeLease, api.DefaultNodeCheckInterval)
	if took < testNodeLease/2 {
		t.Errorf("closed %v after b stopped: before b's lease could expire", took)
	}
}
