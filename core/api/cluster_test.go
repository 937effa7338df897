package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// testClusterSecret is the cluster secret of the tests' nodes.
const testClusterSecret = "unit-test-cluster-secret-0123456789"

// twoNodes is a cluster of two in-process nodes, a and b, each a Manager
// over its own store behind the HTTP API. Session s1 runs on b; a's store
// holds its record, naming b, as the shared database would.
type twoNodes struct {
	a, b       *harness
	aSrv, bSrv *httptest.Server
	bConns     *connTracker
	aLog, bLog e2etest.Buffer
	pty        *fakeenv.PTY // s1's terminal, on b

	// mu protects the following: the registry both nodes list.
	mu       sync.Mutex
	bHealthy bool
	// bSecret is b's core.Node.ClusterSecret as the registry lists it.
	bSecret string
	// bHeader is the header of the last request b received.
	bHeader http.Header
}

// newTwoNodes starts a and b; a's API takes aOpts, with its cluster
// options set; b's has token "b-token", which a forwarded request skips.
func newTwoNodes(t *testing.T, aOpts Options) *twoNodes {
	t.Helper()
	c := &twoNodes{bHealthy: true}
	lister := nodeLister{list: func(context.Context) ([]core.Node, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return []core.Node{
			{Name: "a", URL: c.aSrv.URL, Healthy: true},
			{Name: "b", URL: c.bSrv.URL, Healthy: c.bHealthy, ClusterSecret: c.bSecret},
		}, nil
	}}
	node := func(name string) func(*core.Options) {
		return func(o *core.Options) { o.NodeName, o.Nodes = name, lister }
	}
	c.a, c.b = newHarness(t, node("a")), newHarness(t, node("b"))

	aOpts.Cluster = ClusterOptions{NodeName: "a", Secret: testClusterSecret, NodeCheckInterval: 50 * time.Millisecond}
	aOpts.Logger = slog.New(slog.NewTextHandler(&c.aLog, nil))
	bAPI := NewHandler(c.b.m, Options{Token: "b-token", Logger: slog.New(slog.NewTextHandler(&c.bLog, nil)),
		Cluster: ClusterOptions{NodeName: "b", Secret: testClusterSecret}})
	c.mu.Lock()
	c.aSrv = httptest.NewServer(NewHandler(c.a.m, aOpts))
	c.bSrv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.bHeader = r.Header.Clone()
		c.mu.Unlock()
		bAPI.ServeHTTP(w, r)
	}))
	c.bConns = &connTracker{Listener: c.bSrv.Listener}
	c.bSrv.Listener = c.bConns
	c.bSrv.Start()
	c.mu.Unlock()
	t.Cleanup(c.aSrv.Close)
	t.Cleanup(c.bSrv.Close)

	rec, pty := c.b.create(t, "s1")
	if rec.Node != "b" {
		t.Fatalf("s1's node is %q, want b", rec.Node)
	}
	c.pty = pty
	if err := c.a.store.SaveSession(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return c
}

// setBHealthy sets b's lease as the registry lists it.
func (c *twoNodes) setBHealthy(ok bool) {
	c.mu.Lock()
	c.bHealthy = ok
	c.mu.Unlock()
}

// setBSecret sets b's cluster secret as the registry lists it.
func (c *twoNodes) setBSecret(s string) {
	c.mu.Lock()
	c.bSecret = s
	c.mu.Unlock()
}

// lastBHeader returns the header of the last request b received.
func (c *twoNodes) lastBHeader() http.Header {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bHeader
}

// dial attaches to s1 through srv.
func dial(t *testing.T, srv *httptest.Server, opts wsproto.DialOptions) (*wsproto.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts.ReadLimit = -1
	return wsproto.Dial(ctx, wsproto.WSURL(srv.URL)+wsproto.AttachPath("s1"), opts)
}

// attachThrough attaches to s1 through srv and fails the test if it cannot.
func attachThrough(t *testing.T, srv *httptest.Server, opts wsproto.DialOptions) *e2etest.Term {
	t.Helper()
	conn, err := dial(t, srv, opts)
	if err != nil {
		t.Fatalf("attach through %s: %v", srv.URL, err)
	}
	return e2etest.NewTerm(t, conn)
}

// request sends a request to srv; hdr are header name, value pairs.
func request(t *testing.T, srv *httptest.Server, method, path string, hdr ...string) (int, string) {
	t.Helper()
	api := &apiHarness{srv: srv}
	code, body := api.do(t, method, path, "", hdr...)
	msg, _ := body["error"].(string)
	return code, msg
}

// wantNodeLost fails the test unless err ended a connection with
// CloseNodeLost.
func wantNodeLost(t *testing.T, what string, err error) {
	t.Helper()
	if code, reason, ok := wsproto.CloseStatus(err); !ok || code != CloseNodeLost || reason != CloseReasonNodeLost {
		t.Errorf("%s: %v; want close %d %q", what, err, CloseNodeLost, CloseReasonNodeLost)
	}
}

// TestForwardAttach: a client attached through a to a session on b sees
// b's output and its input, resizes and offsets reach b; the end's exit
// message and close code pass untouched. a's token stays on a; b gets the
// cluster secret and the caller's scope instead.
func TestForwardAttach(t *testing.T) {
	c := newTwoNodes(t, Options{Token: "a-token", ReadToken: "a-read"})
	tm := attachThrough(t, c.aSrv, wsproto.DialOptions{Token: "a-token"})
	if h := tm.Hello(); h.SessionID != "s1" || h.Offset != 0 {
		t.Errorf("hello %+v, want s1 at 0", h)
	}
	h := c.lastBHeader()
	if h.Get("Authorization") != "" || h.Get(HeaderClusterSecret) != testClusterSecret ||
		h.Get(HeaderClusterScope) != ScopeFull || h.Get(HeaderClusterHop) != "1" {
		t.Errorf("b received the header %v: want the secret, scope full, hop 1, and no token", h)
	}
	c.pty.Output(t, []byte("hello from b"))
	tm.WaitOutput("hello from b")
	tm.Send("typed on a")
	select {
	case in := <-c.pty.Input():
		if string(in) != "typed on a" {
			t.Errorf("b's terminal got %q", in)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the input did not reach b's terminal")
	}
	tm.Resize(100, 30)
	select {
	case s := <-c.pty.Resizes():
		if s != (shared.Size{Cols: 100, Rows: 30}) {
			t.Errorf("b's terminal resized to %v", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the resize did not reach b's terminal")
	}

	resumed := attachThrough(t, c.aSrv, wsproto.DialOptions{Token: "a-token", Offset: new(int64(6))})
	if got := resumed.Hello().Offset; got != 6 {
		t.Errorf("resumed at 6 through a: hello offset %d", got)
	}
	resumed.WaitOutput("from b")
	if string(resumed.Out) != "from b" {
		t.Errorf("resumed at 6 through a: %q, want %q", resumed.Out, "from b")
	}

	viewer := attachThrough(t, c.aSrv, wsproto.DialOptions{Token: "a-read", ReadOnly: true})
	if got := c.lastBHeader().Get(HeaderClusterScope); got != ScopeRead {
		t.Errorf("a read-only client's attach reached b with scope %q", got)
	}
	viewer.Send("from a viewer")
	if msg := viewer.WaitControl(wsproto.TypeError); !strings.Contains(msg.Message, "read") {
		t.Errorf("a viewer's input through a: %+v", msg)
	}

	c.pty.End(shared.ExitStatus{Code: 3})
	err := tm.WaitEnd()
	if code, reason, _ := wsproto.CloseStatus(err); code != wsproto.CloseNormal || reason != wsproto.CloseReasonExited {
		t.Errorf("the session's end through a: %v, want %d %q", err, wsproto.CloseNormal, wsproto.CloseReasonExited)
	}
	if n := len(tm.Control); n == 0 || tm.Control[n-1].Type != wsproto.TypeExit || tm.Control[n-1].Code != 3 {
		t.Errorf("control messages through a: %+v, want the exit with code 3 last", tm.Control)
	}
	if strings.Contains(c.aLog.String()+c.bLog.String(), testClusterSecret) {
		t.Error("the cluster secret is in a log")
	}
}

// TestForwardRequests: DELETE of a session on b, sent to a, reaches b; a
// read-only client's claim of the full scope is stripped on a, so b
// refuses its write attach; a forwarded request is never forwarded again.
func TestForwardRequests(t *testing.T) {
	c := newTwoNodes(t, Options{Token: "a-token", ReadToken: "a-read"})
	if code, msg := request(t, c.aSrv, "GET", "/api/v1/sessions/s1/attach", "Authorization", "Bearer a-read",
		HeaderClusterScope, ScopeFull); code != http.StatusForbidden || !strings.Contains(msg, "read-only") {
		t.Errorf("a write attach with the read token and a forged scope: %d %q, want 403 from b", code, msg)
	}
	if got := c.lastBHeader().Get(HeaderClusterScope); got != ScopeRead {
		t.Errorf("the forged scope reached b as %q, want read", got)
	}
	if code, _ := request(t, c.aSrv, "DELETE", "/api/v1/sessions/s1", "Authorization", "Bearer a-read",
		HeaderClusterScope, ScopeFull); code != http.StatusForbidden {
		t.Errorf("DELETE with the read token and a forged scope: %d, want 403", code)
	}
	if code, _ := request(t, c.aSrv, "DELETE", "/api/v1/sessions/s1", "Authorization", "Bearer a-token",
		HeaderClusterSecret, "forged-secret-value-42", HeaderClusterScope, ScopeFull); code != http.StatusUnauthorized {
		t.Errorf("DELETE with a forged secret: %d, want 401", code)
	}
	if strings.Contains(c.aLog.String(), "forged-secret-value-42") || !strings.Contains(c.aLog.String(), "wrong cluster secret") {
		t.Errorf("a's log of the forged secret:\n%s\nwant it logged without the value", c.aLog.String())
	}

	// A forwarded request is served by the node it reaches, unless that
	// node's records say that another node runs the session: a loop.
	if code, msg := request(t, c.bSrv, "DELETE", "/api/v1/sessions/nowhere", HeaderClusterSecret, testClusterSecret,
		HeaderClusterScope, ScopeFull); code != http.StatusNoContent {
		t.Errorf("a forwarded DELETE of a session b does not know: %d %q, want 204 from b itself", code, msg)
	}
	if code, msg := request(t, c.aSrv, "DELETE", "/api/v1/sessions/s1", HeaderClusterSecret, testClusterSecret,
		HeaderClusterScope, ScopeFull); code != http.StatusLoopDetected {
		t.Errorf("a forwarded request a would forward again: %d %q, want 508", code, msg)
	}
	if err := c.b.m.Attachable("s1"); err != nil {
		t.Fatalf("s1 on b after the refused requests: %v", err)
	}

	if code, msg := request(t, c.aSrv, "DELETE", "/api/v1/sessions/s1", "Authorization", "Bearer a-token"); code != http.StatusNoContent {
		t.Fatalf("DELETE through a: %d %q", code, msg)
	}
	if err := c.b.m.Attachable("s1"); !errors.Is(err, core.ErrSessionNotFound) {
		t.Errorf("s1 on b after DELETE through a: %v, want it gone", err)
	}
}

// TestClusterAuth: the cluster secret lets a request skip the Host,
// Origin and token checks, with the scope it carries; a wrong one is 401,
// logged without its value; on a single server the cluster's headers
// grant nothing.
func TestClusterAuth(t *testing.T) {
	c := newTwoNodes(t, Options{})
	secret := []string{HeaderClusterSecret, testClusterSecret, HeaderClusterScope, ScopeFull}
	tests := []struct {
		name   string
		method string
		path   string
		hdr    []string
		want   int
	}{
		{"secret skips host, origin and token", "GET", "/api/v1/sessions/s1",
			append([]string{"Host", "evil.example", "Origin", "http://evil.example"}, secret...), 200},
		{"no secret", "GET", "/api/v1/sessions/s1", nil, 401},
		{"wrong secret", "GET", "/api/v1/sessions/s1", []string{HeaderClusterSecret, "wrong-secret-value-77", HeaderClusterScope, ScopeFull}, 401},
		{"empty secret", "GET", "/api/v1/sessions/s1", []string{HeaderClusterSecret, " ", HeaderClusterScope, ScopeFull}, 401},
		{"no scope", "GET", "/api/v1/sessions/s1", []string{HeaderClusterSecret, testClusterSecret}, 400},
		{"unknown scope", "GET", "/api/v1/sessions/s1", []string{HeaderClusterSecret, testClusterSecret, HeaderClusterScope, "admin"}, 400},
		{"read scope reads", "GET", "/api/v1/sessions/s1", []string{HeaderClusterSecret, testClusterSecret, HeaderClusterScope, ScopeRead}, 200},
		{"read scope cannot delete", "DELETE", "/api/v1/sessions/s1", []string{HeaderClusterSecret, testClusterSecret, HeaderClusterScope, ScopeRead}, 403},
		{"read scope cannot attach to write", "GET", "/api/v1/sessions/s1/attach", []string{HeaderClusterSecret, testClusterSecret, HeaderClusterScope, ScopeRead}, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, msg := request(t, c.bSrv, tc.method, tc.path, tc.hdr...); code != tc.want {
				t.Errorf("%s %s: %d %q, want %d", tc.method, tc.path, code, msg, tc.want)
			}
		})
	}
	if log := c.bLog.String(); strings.Contains(log, "wrong-secret-value-77") || strings.Count(log, "wrong cluster secret") != 2 {
		t.Errorf("b's log:\n%s\nwant the two wrong secrets logged without their values", log)
	}

	single := newAPI(t, Options{Token: "tok"}, nil)
	if code, _ := single.do(t, "GET", "/api/v1/sessions", "", HeaderClusterSecret, testClusterSecret, HeaderClusterScope, ScopeFull); code != 401 {
		t.Errorf("a single server, the cluster's headers without a token: %d, want 401", code)
	}
	if code, _ := single.do(t, "GET", "/api/v1/sessions", "", "Authorization", "Bearer tok", HeaderClusterSecret, "anything"); code != 200 {
		t.Errorf("a single server, a cluster header with the token: %d, want 200 (the header means nothing)", code)
	}
}

// TestForwardNodeLost: a client attached through a to b's session is
// closed with 4503 node_lost when b's lease expires while the connection
// stays open, and when b's connection breaks without a close frame; an
// attach to a node that cannot be reached or is not healthy is closed the
// same way, and a request to it is 503.
func TestForwardNodeLost(t *testing.T) {
	c := newTwoNodes(t, Options{})
	tm := attachThrough(t, c.aSrv, wsproto.DialOptions{})
	c.pty.Output(t, []byte("before"))
	tm.WaitOutput("before")
	c.setBHealthy(false)
	wantNodeLost(t, "b's lease expired", tm.WaitEnd())
	_, err := dial(t, c.aSrv, wsproto.DialOptions{})
	wantNodeLost(t, "an attach while b is not healthy", err)
	if code, msg := request(t, c.aSrv, "DELETE", "/api/v1/sessions/s1"); code != http.StatusServiceUnavailable || !strings.Contains(msg, "node b") {
		t.Errorf("DELETE while b is not healthy: %d %q, want 503", code, msg)
	}

	c.setBHealthy(true)
	tm = attachThrough(t, c.aSrv, wsproto.DialOptions{})
	tm.WaitOutput("before")
	c.bConns.breakAll()
	wantNodeLost(t, "b's connection broke", tm.WaitEnd())

	c.bSrv.Close()
	_, err = dial(t, c.aSrv, wsproto.DialOptions{})
	wantNodeLost(t, "an attach while b is down", err)
	if code, msg := request(t, c.aSrv, "POST", "/api/v1/sessions/s1/restart"); code != http.StatusServiceUnavailable || !strings.Contains(msg, "node b") {
		t.Errorf("restart while b is down: %d %q, want 503", code, msg)
	}
}

// connTracker is a listener that can break every connection it accepted,
// as a node killed with SIGKILL does.
type connTracker struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *connTracker) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, conn)
		l.mu.Unlock()
	}
	return conn, err
}

// breakAll closes every connection accepted so far.
func (l *connTracker) breakAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// An environment that a session on another node runs in cannot be deleted
// through this one; once the session has ended it can, even with a row
// from before the cluster (no node) that still says it runs.
func TestDeleteEnvironmentInUseOnAnotherNode(t *testing.T) {
	c := newTwoNodes(t, Options{})
	code, msg := request(t, c.aSrv, "DELETE", "/api/v1/environments/fake")
	if code != http.StatusConflict || !strings.Contains(msg, "session s1") || !strings.Contains(msg, "node b") {
		t.Fatalf("DELETE through a while s1 runs on b: %d %q, want 409 naming s1 and b", code, msg)
	}
	if _, err := c.a.store.GetEnvironment(context.Background(), "fake"); err != nil {
		t.Fatalf("the refused delete removed the environment: %v", err)
	}
	ended := core.StatusTerminated
	if err := c.a.store.UpdateSession(context.Background(), "s1", core.SessionUpdate{Status: &ended}); err != nil {
		t.Fatal(err)
	}
	legacy, err := c.a.store.GetSession(context.Background(), "s1")
	if err != nil {
		t.Fatal(err)
	}
	legacy.ID, legacy.Node, legacy.Status = "s0", "", core.StatusActive
	if err := c.a.store.SaveSession(context.Background(), legacy); err != nil {
		t.Fatal(err)
	}
	if code, msg := request(t, c.aSrv, "DELETE", "/api/v1/environments/fake"); code != http.StatusNoContent {
		t.Fatalf("DELETE through a after s1 ended: %d %q, want 204", code, msg)
	}
}

// A cluster secret equal to the read-only token (or the token) would let
// its holder claim the full scope, skipping Host, Origin and the tokens:
// such a handler runs as a single server, and a request with the secret
// and any scope is a plain request, which the read token cannot make
// write. serve refuses the configuration outright
// (cmd/ptyhost: TestClusterSecretMayNotBeAToken).
func TestClusterSecretEqualToATokenGrantsNothing(t *testing.T) {
	const full, read = "full-token-0123456789", "read-token-0123456789"
	for _, secret := range []string{read, full} {
		var logs strings.Builder
		api := newAPI(t, Options{Token: full, ReadToken: read, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			Cluster: ClusterOptions{NodeName: "a", Secret: secret}}, nil)
		api.create(t, "s")
		code, body := api.do(t, "DELETE", "/api/v1/sessions/s", "",
			HeaderClusterSecret, secret, HeaderClusterScope, ScopeFull, "Authorization", "Bearer "+read)
		if code != http.StatusForbidden {
			t.Errorf("DELETE with the read token and a secret equal to a token: %d %v, want 403", code, body)
		}
		if code, _ := api.do(t, "DELETE", "/api/v1/sessions/s", "", HeaderClusterSecret, secret, HeaderClusterScope, ScopeFull); code != http.StatusUnauthorized {
			t.Errorf("DELETE with only a secret equal to a token: %d, want 401", code)
		}
		if rec, err := api.m.GetSession(t.Context(), "s"); err != nil || rec.Status == core.StatusTerminated {
			t.Fatalf("the session was destroyed: %+v, %v", rec, err)
		}
		if !strings.Contains(logs.String(), "the cluster secret equals a token") || strings.Contains(logs.String(), secret) {
			t.Errorf("log:\n%s\nwant the refusal, without the secret", logs.String())
		}
	}
}

// TestForwardToANodeWithAnotherSecret: a node whose cluster secret
// differs from this node's refuses what this node forwards; the client,
// whose token this node took, gets 502 saying so — not the owner's 401,
// which would read as its token being wrong — and this node logs it.
func TestForwardToANodeWithAnotherSecret(t *testing.T) {
	c := newTwoNodes(t, Options{})
	var logs e2etest.Buffer
	other := httptest.NewServer(NewHandler(c.a.m, Options{Token: "a-token", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Cluster: ClusterOptions{NodeName: "a", Secret: "another-cluster-secret-0123456789"}}))
	t.Cleanup(other.Close)
	for _, path := range []string{"/api/v1/sessions/s1", "/api/v1/sessions/s1/attach"} {
		method := "DELETE"
		if strings.HasSuffix(path, "/attach") {
			method = "GET"
		}
		code, msg := request(t, other, method, path, "Authorization", "Bearer a-token")
		if code != http.StatusBadGateway || !strings.Contains(msg, "cluster secret") {
			t.Errorf("%s %s through a node with another secret: %d %q, want 502 naming the cluster secret", method, path, code, msg)
		}
	}
	// A WebSocket upgrade is refused before it is switched, the same way.
	if _, err := dial(t, other, wsproto.DialOptions{Token: "a-token"}); err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("attach through a node with another secret: %v, want 502", err)
	}
	if err := c.b.m.Attachable("s1"); err != nil {
		t.Errorf("s1 on b: %v, want it untouched", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "node=b") {
		t.Errorf("a's log:\n%s\nwant an error naming node b", logs.String())
	}
}

// TestForwardRefusedToANodeOfAnotherSecret: a node the registry lists
// with a cluster secret other than this node's (the fingerprints differ)
// is sent nothing: a request for its session is refused here with a 502
// that names the node and the mismatch, a WebSocket before its upgrade,
// and no request, so no secret, reaches it. A node whose secret is
// unknown (a node of a ptyhost from before the fingerprints) is
// forwarded to as before.
func TestForwardRefusedToANodeOfAnotherSecret(t *testing.T) {
	c := newTwoNodes(t, Options{Token: "a-token"})
	c.setBSecret(core.SecretDiffers)
	for _, tc := range []struct{ method, path string }{
		{"DELETE", "/api/v1/sessions/s1"},
		{"POST", "/api/v1/sessions/s1/restart"},
		{"GET", "/api/v1/sessions/s1/attach"},
	} {
		code, msg := request(t, c.aSrv, tc.method, tc.path, "Authorization", "Bearer a-token")
		if code != http.StatusBadGateway || !strings.Contains(msg, "node b, which runs this session, has a cluster secret other than node a's") {
			t.Errorf("%s %s for b's session: %d %q, want 502 naming b and the mismatch", tc.method, tc.path, code, msg)
		}
	}
	if _, err := dial(t, c.aSrv, wsproto.DialOptions{Token: "a-token"}); err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("attach to b's session: %v, want 502", err)
	}
	if h := c.lastBHeader(); h != nil {
		t.Errorf("b received a request: %v", h)
	}
	if err := c.b.m.Attachable("s1"); err != nil {
		t.Errorf("s1 on b: %v, want it untouched", err)
	}
	if log := c.aLog.String(); strings.Contains(log, testClusterSecret) {
		t.Errorf("a's log shows the secret:\n%s", log)
	}

	c.setBSecret(core.SecretUnknown)
	tm := attachThrough(t, c.aSrv, wsproto.DialOptions{Token: "a-token"})
	c.pty.Output(t, []byte("from b"))
	tm.WaitOutput("from b")
	if got := c.lastBHeader().Get(HeaderClusterSecret); got != testClusterSecret {
		t.Errorf("b's secret unknown: b got %q, want the request forwarded with the secret", got)
	}
}

// TestProxiedClientsOfAStoppingNode: a node that stops closes the clients
// it proxies to another node with 1012, "the session goes on: reconnect",
// as it closes its own, rather than dropping their connections without a
// close; the session runs on where it is.
func TestProxiedClientsOfAStoppingNode(t *testing.T) {
	c := newTwoNodes(t, Options{Token: "a-token"})
	tm := attachThrough(t, c.aSrv, wsproto.DialOptions{Token: "a-token"})
	c.pty.Output(t, []byte("before the stop"))
	tm.WaitOutput("before the stop")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	go func() { _ = c.aSrv.Config.Shutdown(ctx) }()
	err := tm.WaitEnd()
	if code, reason, _ := wsproto.CloseStatus(err); code != wsproto.CloseRestart || reason != wsproto.CloseReasonRestart {
		t.Errorf("the proxied client as a stops: %v, want %d %q", err, wsproto.CloseRestart, wsproto.CloseReasonRestart)
	}
	if err := c.b.m.Attachable("s1"); err != nil {
		t.Errorf("s1 on b after a stopped: %v, want it running", err)
	}
}
