package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
)

// fakeNode stands for another node of the cluster: it records the
// requests forwarded to it and answers a create as a node would.
type fakeNode struct {
	srv *httptest.Server
	// delay is how long it takes to answer.
	delay atomic.Int64

	mu   sync.Mutex
	reqs []string // "METHOD PATH hop=HOP body"
}

func newFakeNode(t *testing.T, name string) *fakeNode {
	n := &fakeNode{}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		n.mu.Lock()
		n.reqs = append(n.reqs, fmt.Sprintf("%s %s hop=%s %s", r.Method, r.URL.Path, r.Header.Get("Ptyhost-Cluster-Hop"), body))
		n.mu.Unlock()
		time.Sleep(time.Duration(n.delay.Load()))
		writeJSON(w, http.StatusCreated, map[string]any{"id": "made-on-" + name, "node": name, "status": "ACTIVE"})
	}))
	t.Cleanup(n.srv.Close)
	return n
}

// requests returns what the node received, one request a line.
func (n *fakeNode) requests() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Join(n.reqs, "\n")
}

// clusterAPI is node a's API in a cluster of a and b, b being fakeNode;
// sessions sets each node's running sessions and healthy b's health as
// the registry lists them.
type clusterAPI struct {
	*apiHarness
	b         *fakeNode
	aSessions atomic.Int64
	bSessions atomic.Int64
	bHealthy  atomic.Bool
	// bSecret is b's core.Node.ClusterSecret as a lists it.
	bSecret atomic.Value
}

// placementSecret is the cluster secret of newClusterAPI's node a.
const placementSecret = "placement-test-secret-0123456789"

func newClusterAPI(t *testing.T, hopts Options) *clusterAPI {
	c := &clusterAPI{b: newFakeNode(t, "b")}
	hopts.Cluster = ClusterOptions{NodeName: "a", Secret: placementSecret}
	c.bHealthy.Store(true)
	c.bSecret.Store("")
	c.apiHarness = newAPI(t, hopts, func(o *core.Options) {
		o.NodeName = "a"
		o.Plugins = core.StaticEnvironments{"FAKE": o.Plugins.(core.StaticEnvironments)["FAKE"], "HOST": o.Plugins.(core.StaticEnvironments)["FAKE"]}
		o.Nodes = nodeLister{list: func(context.Context) ([]core.Node, error) {
			return []core.Node{
				{Name: "a", URL: "http://a.invalid", Healthy: true, Sessions: int(c.aSessions.Load())},
				{Name: "b", URL: c.b.srv.URL, Healthy: c.bHealthy.Load(), Sessions: int(c.bSessions.Load()), ClusterSecret: c.bSecret.Load().(string)},
			}, nil
		}}
	})
	return c
}

// TestCreatePlaced: POST /api/v1/sessions on node a creates the session
// where placement says: here when a serves the environment with the
// fewest sessions, else forwarded whole to b, whose answer the client
// gets; 503 naming why when no healthy node serves it. A forwarded
// create is created here, never placed again, and refused if this node
// does not serve the environment.
func TestCreatePlaced(t *testing.T) {
	api := newClusterAPI(t, Options{})
	for _, body := range []string{
		`{"id":"host-b","type":"HOST","node":"b"}`,
		`{"id":"on-b","type":"FAKE","nodes":["b"]}`,
	} {
		if code, got := api.do(t, "POST", "/api/v1/environments", body); code != 201 {
			t.Fatalf("create environment %s: %d %v", body, code, got)
		}
	}
	if code, env := api.do(t, "POST", "/api/v1/environments", `{"id":"host-a","type":"HOST"}`); code != 201 || env["node"] != "a" {
		t.Fatalf("create a HOST environment on a: %d %v; want node a, the creator", code, env)
	}

	// a has fewer sessions: FAKE (any node) runs here.
	api.bSessions.Store(2)
	if code, rec := api.do(t, "POST", "/api/v1/sessions", `{"id":"s1","environment_id":"fake"}`); code != 201 || rec["node"] != "a" {
		t.Errorf("create with a least busy: %d %v, want 201 on a", code, rec)
	}
	// b has fewer: forwarded, body and all.
	api.aSessions.Store(3)
	body := `{"id":"s2","environment_id":"fake","cols":100,"rows":30}`
	if code, rec := api.do(t, "POST", "/api/v1/sessions", body); code != 201 || rec["node"] != "b" || rec["id"] != "made-on-b" {
		t.Errorf("create with b least busy: %d %v, want b's 201", code, rec)
	}
	// HOST of b, and FAKE restricted to b, go to b though b is busier.
	api.aSessions.Store(0)
	for _, env := range []string{"host-b", "on-b"} {
		if code, rec := api.do(t, "POST", "/api/v1/sessions", `{"environment_id":"`+env+`"}`); code != 201 || rec["node"] != "b" {
			t.Errorf("create in %s: %d %v, want b's 201", env, code, rec)
		}
	}
	// HOST of a stays here though b is idle.
	api.bSessions.Store(0)
	api.aSessions.Store(9)
	if code, rec := api.do(t, "POST", "/api/v1/sessions", `{"id":"s3","environment_id":"host-a"}`); code != 201 || rec["node"] != "a" {
		t.Errorf("create in host-a: %d %v, want 201 on a", code, rec)
	}
	want := strings.Join([]string{
		"POST /api/v1/sessions hop=1 " + body,
		`POST /api/v1/sessions hop=1 {"environment_id":"host-b"}`,
		`POST /api/v1/sessions hop=1 {"environment_id":"on-b"}`,
	}, "\n")
	if got := api.b.requests(); got != want {
		t.Errorf("b received:\n%s\nwant:\n%s", got, want)
	}

	// b unhealthy: what only b serves is unavailable; the rest runs here.
	api.bHealthy.Store(false)
	code, rec := api.do(t, "POST", "/api/v1/sessions", `{"environment_id":"host-b"}`)
	if msg, _ := rec["error"].(string); code != 503 || !strings.Contains(msg, `environment "host-b" is served by node b (unhealthy`) {
		t.Errorf("create in host-b with b unhealthy: %d %v, want 503 saying why", code, rec)
	}
	if code, rec := api.do(t, "POST", "/api/v1/sessions", `{"id":"s4","environment_id":"fake"}`); code != 201 || rec["node"] != "a" {
		t.Errorf("create in fake with b unhealthy: %d %v, want 201 on a", code, rec)
	}
	if code, rec := api.do(t, "POST", "/api/v1/sessions", `{"environment_id":"nope"}`); code != 404 {
		t.Errorf("create in an unknown environment: %d %v, want 404", code, rec)
	}

	// Forwarded to a (by a node with the secret): created here, not
	// placed again; refused if a does not serve the environment.
	api.bHealthy.Store(true)
	forwarded := []string{HeaderClusterSecret, placementSecret, HeaderClusterScope, "full", HeaderClusterHop, "1"}
	if code, rec := api.do(t, "POST", "/api/v1/sessions", `{"id":"s5","environment_id":"fake"}`, forwarded...); code != 201 || rec["node"] != "a" {
		t.Errorf("a forwarded create: %d %v, want 201 here", code, rec)
	}
	code, rec = api.do(t, "POST", "/api/v1/sessions", `{"id":"s6","environment_id":"host-b"}`, forwarded...)
	if msg, _ := rec["error"].(string); code != 400 || !strings.Contains(msg, "runs on node b, not on a") {
		t.Errorf("a forwarded create of b's HOST environment: %d %v, want 400", code, rec)
	}
	if n := strings.Count(api.b.requests(), "\n") + 1; n != 3 {
		t.Errorf("b received %d requests, want still 3:\n%s", n, api.b.requests())
	}
	// A bad request is refused here, not forwarded.
	if code, _ := api.do(t, "POST", "/api/v1/sessions", `{"environment_id":"host-b","cols":0,"rows":5}`); code != 400 {
		t.Errorf("a bad size: %d, want 400", code)
	}
	if code, _ := api.do(t, "POST", "/api/v1/sessions", `{"environment_id":"host-b","bogus":1}`); code != 400 {
		t.Errorf("an unknown field: %d, want 400", code)
	}
	if n := strings.Count(api.b.requests(), "\n") + 1; n != 3 {
		t.Errorf("b received %d requests, want still 3:\n%s", n, api.b.requests())
	}
}

// TestCreatePlacedGuarded: a create that would go to b is refused on a
// without the token, with the read-only one, cross-origin, and for a
// rebound host name, and reaches b in none of these cases.
func TestCreatePlacedGuarded(t *testing.T) {
	api := newClusterAPI(t, Options{Token: "secret-token", ReadToken: "read-token"})
	api.aSessions.Store(5)
	port := api.port(t)
	tests := []struct {
		name string
		hdr  []string
		want int
	}{
		{"no token", nil, 401},
		{"wrong token", []string{"Authorization", "Bearer nope"}, 401},
		{"read-only token", []string{"Authorization", "Bearer read-token"}, 403},
		{"cross-origin page", []string{"Authorization", "Bearer secret-token", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, 403},
		{"rebound host name", []string{"Authorization", "Bearer secret-token", "Host", "evil.example:" + port}, 421},
		{"no token, hop set", []string{"Ptyhost-Cluster-Hop", "1"}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := api.do(t, "POST", "/api/v1/sessions", `{"environment_id":"fake"}`, tc.hdr...)
			if code != tc.want {
				t.Errorf("POST /api/v1/sessions: %d %v, want %d", code, body, tc.want)
			}
		})
	}
	if got := api.b.requests(); got != "" {
		t.Errorf("b received requests a refused:\n%s", got)
	}
	code, rec := api.do(t, "POST", "/api/v1/sessions", `{"environment_id":"fake"}`, "Authorization", "Bearer secret-token")
	if code != 201 || rec["node"] != "b" || !strings.Contains(api.b.requests(), "POST /api/v1/sessions") {
		t.Errorf("with the token: %d %v, b received %q; want it forwarded", code, rec, api.b.requests())
	}
	for _, body := range []string{`{"id":"x","type":"HOST","node":"b"}`, `{"id":"y","type":"FAKE","nodes":["b"]}`} {
		if code, _ := api.do(t, "POST", "/api/v1/environments", body); code != 401 {
			t.Errorf("create environment %s without the token: %d, want 401", body, code)
		}
		if code, _ := api.do(t, "POST", "/api/v1/environments", body, "Authorization", "Bearer read-token"); code != 403 {
			t.Errorf("create environment %s with the read-only token: %d, want 403", body, code)
		}
	}
}

// TestEnvironmentNodes: node and nodes are validated, stored, listed,
// and changed by PUT; a GET's body sent back by PUT is accepted. A single
// server keeps what it is given and serves the environment regardless.
func TestEnvironmentNodes(t *testing.T) {
	api := newClusterAPI(t, Options{})
	bad := map[string]string{
		`{"id":"e","type":"FAKE","node":"a"}`:               "only a HOST environment names its node",
		`{"id":"e","type":"HOST","nodes":["a"]}`:            "set node instead",
		`{"id":"e","type":"HOST","node":"A_1"}`:             `node "A_1"`,
		`{"id":"e","type":"FAKE","nodes":["a","a"]}`:        "listed twice",
		`{"id":"e","type":"FAKE","nodes":"a"}`:              `"nodes" must be an array, not a string`,
		`{"id":"e","type":"FAKE","nodes":["a"],"node_x":1}`: "unknown field",
	}
	for body, want := range bad {
		code, got := api.do(t, "POST", "/api/v1/environments", body)
		if msg, _ := got["error"].(string); code != 400 || !strings.Contains(msg, want) {
			t.Errorf("create %s: %d %v, want 400 saying %s", body, code, got, want)
		}
	}
	if code, got := api.do(t, "POST", "/api/v1/environments", `{"id":"d","type":"FAKE","nodes":["b","a"]}`); code != 201 || fmt.Sprint(got["nodes"]) != "[b a]" {
		t.Fatalf("create d: %d %v", code, got)
	}
	code, got := api.do(t, "GET", "/api/v1/environments/d", "")
	if code != 200 || fmt.Sprint(got["nodes"]) != "[b a]" || got["node"] != nil {
		t.Errorf("get d: %d %v", code, got)
	}
	// The GET's body, sent back whole.
	code, _ = api.do(t, "PUT", "/api/v1/environments/d", fmt.Sprintf(`{"id":"d","type":"FAKE","name":"renamed","nodes":["b","a"],"created_at":%q,"updated_at":%q}`, got["created_at"], got["updated_at"]))
	if code != 200 {
		t.Errorf("PUT the GET's body back: %d", code)
	}
	if code, got := api.do(t, "PUT", "/api/v1/environments/d", `{"nodes":[]}`); code != 200 || got["nodes"] != nil || got["name"] != "renamed" {
		t.Errorf("PUT nodes []: %d %v, want every node", code, got)
	}
	if code, got := api.do(t, "PUT", "/api/v1/environments/d", `{"nodes":["b b"]}`); code != 400 {
		t.Errorf("PUT a bad node name: %d %v", code, got)
	}
	if code, got := api.do(t, "POST", "/api/v1/environments", `{"id":"h","type":"HOST","node":"b"}`); code != 201 || got["node"] != "b" {
		t.Fatalf("create h: %d %v", code, got)
	}
	if code, got := api.do(t, "PUT", "/api/v1/environments/h", `{"node":""}`); code != 200 || got["node"] != "a" {
		t.Errorf("PUT node \"\" on node a: %d %v, want node a", code, got)
	}
	code, list := api.do(t, "GET", "/api/v1/environments", "")
	if got := fmt.Sprint(list["environments"]); code != 200 || !strings.Contains(got, "node:a") || !strings.Contains(got, "name:renamed") {
		t.Errorf("list: %d %s", code, got)
	}

	single := newAPI(t, Options{}, func(o *core.Options) {
		o.Plugins = core.StaticEnvironments{"FAKE": o.Plugins.(core.StaticEnvironments)["FAKE"], "HOST": o.Plugins.(core.StaticEnvironments)["FAKE"]}
	})
	if code, got := single.do(t, "POST", "/api/v1/environments", `{"id":"h","type":"HOST"}`); code != 201 || got["node"] != nil {
		t.Errorf("a single server's HOST environment: %d %v, want no node", code, got)
	}
	if code, got := single.do(t, "POST", "/api/v1/environments", `{"id":"p","type":"HOST","node":"far"}`); code != 201 || got["node"] != "far" {
		t.Errorf("a single server's HOST environment with a node: %d %v", code, got)
	}
	if code, got := single.do(t, "POST", "/api/v1/sessions", `{"environment_id":"p"}`); code != 201 || got["node"] != nil {
		t.Errorf("a single server's session in p: %d %v, want 201 here, no node", code, got)
	}
}

// TestReadsShowEveryNode: on node a, the sessions b recorded in the
// shared database list and read like a's own, each with its node; a
// single server's have no node field.
func TestReadsShowEveryNode(t *testing.T) {
	api := newClusterAPI(t, Options{})
	api.create(t, "mine")
	if err := api.store.SaveSession(t.Context(), core.SessionRecord{ID: "theirs", EnvironmentID: "fake", Node: "b", Status: core.StatusIdle, Cols: 80, Rows: 24}); err != nil {
		t.Fatal(err)
	}
	code, list := api.do(t, "GET", "/api/v1/sessions", "")
	var got []string
	for _, s := range list["sessions"].([]any) {
		rec := s.(map[string]any)
		got = append(got, fmt.Sprintf("%s@%s:%s", rec["id"], rec["node"], rec["status"]))
	}
	if want := "mine@a:ACTIVE theirs@b:IDLE"; code != 200 || strings.Join(got, " ") != want {
		t.Errorf("list on a: %d %v, want %s", code, got, want)
	}
	if code, rec := api.do(t, "GET", "/api/v1/sessions/theirs", ""); code != 200 || rec["node"] != "b" || rec["status"] != "IDLE" {
		t.Errorf("get b's session on a: %d %v", code, rec)
	}
	if code, list := api.do(t, "GET", "/api/v1/sessions?status=IDLE", ""); code != 200 || len(list["sessions"].([]any)) != 1 {
		t.Errorf("list IDLE on a: %d %v, want b's session", code, list)
	}

	single := newAPI(t, Options{}, nil)
	single.create(t, "alone")
	_, raw := single.do(t, "GET", "/api/v1/sessions/alone", "")
	if _, has := raw["node"]; has {
		t.Errorf("a single server's session has a node field: %v", raw)
	}
}

// TestForwardedCreateWaitsForTheStart: a create placed on another node
// waits for that node's answer as long as a plugin may take to start the
// program, not the bound on other forwarded requests: given up sooner,
// the client would be told the node is lost while the session starts
// there. Other requests keep their bound.
func TestForwardedCreateWaitsForTheStart(t *testing.T) {
	defer func(d time.Duration) { forwardAnswerTimeout = d }(forwardAnswerTimeout)
	forwardAnswerTimeout = 100 * time.Millisecond
	api := newClusterAPI(t, Options{})
	if code, got := api.do(t, "POST", "/api/v1/environments", `{"id":"on-b","type":"FAKE","nodes":["b"]}`); code != 201 {
		t.Fatalf("create environment: %d %v", code, got)
	}
	api.b.delay.Store(int64(500 * time.Millisecond))
	if code, rec := api.do(t, "POST", "/api/v1/sessions", `{"environment_id":"on-b"}`); code != 201 || rec["node"] != "b" {
		t.Errorf("create taking 500ms on b, forwarded with a 100ms bound on answers: %d %v, want b's 201", code, rec)
	}
}

// TestCreatePlacedAvoidsAnotherSecret: a node whose cluster secret the
// registry says differs from this node's gets no create, though it is the
// idlest: the session runs here, and an environment only it serves is
// 503 saying why; nothing is sent to it. A node whose secret is unknown
// (one of a ptyhost from before the registry recorded them) is placed on
// as before.
func TestCreatePlacedAvoidsAnotherSecret(t *testing.T) {
	api := newClusterAPI(t, Options{})
	if code, got := api.do(t, "POST", "/api/v1/environments", `{"id":"on-b","type":"FAKE","nodes":["b"]}`); code != 201 {
		t.Fatalf("create environment on-b: %d %v", code, got)
	}
	api.aSessions.Store(3)
	api.bSecret.Store(core.SecretDiffers)
	if code, rec := api.do(t, "POST", "/api/v1/sessions", `{"id":"s1","environment_id":"fake"}`); code != 201 || rec["node"] != "a" {
		t.Errorf("create with b idlest but of another secret: %d %v, want 201 on a", code, rec)
	}
	code, rec := api.do(t, "POST", "/api/v1/sessions", `{"environment_id":"on-b"}`)
	if msg, _ := rec["error"].(string); code != 503 || !strings.Contains(msg, `environment "on-b" is served by node b (its cluster secret differs from this node's)`) {
		t.Errorf("create in on-b, b of another secret: %d %v, want 503 saying why", code, rec)
	}
	if got := api.b.requests(); got != "" {
		t.Errorf("b, of another secret, received:\n%s", got)
	}

	api.bSecret.Store(core.SecretUnknown)
	if code, rec := api.do(t, "POST", "/api/v1/sessions", `{"environment_id":"fake"}`); code != 201 || rec["node"] != "b" {
		t.Errorf("create with b idlest, its secret unknown: %d %v, want b's 201", code, rec)
	}
	if got, want := api.b.requests(), `POST /api/v1/sessions hop=1 {"environment_id":"fake"}`; got != want {
		t.Errorf("b received:\n%s\nwant %s", got, want)
	}
}
