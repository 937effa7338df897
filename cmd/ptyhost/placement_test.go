package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/api"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestNodeHostsAndReads: two nodes on one PostgreSQL database. Each has
// its own host-NAME environment, served by itself alone, and the shared
// host is the first node's. A session created on b in host-b runs on b;
// listing and getting sessions on a show it with node b, and ls on a has
// a NODE column; env ls shows which node serves each environment.
func TestNodeHostsAndReads(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	a := startNode(t, dsn, "a")
	b := startNode(t, dsn, "b")

	envNodes := func(srv *e2etest.Server) string {
		code, out := srv.Request(t, "GET", "/api/v1/environments", nil)
		if code != 200 {
			t.Fatalf("list environments: %d %v", code, out)
		}
		var lines []string
		for _, e := range out["environments"].([]any) {
			env := e.(map[string]any)
			lines = append(lines, fmt.Sprintf("%s:%s:%v", env["id"], env["type"], env["node"]))
		}
		return strings.Join(lines, " ")
	}
	const wantEnvs = "host:HOST:a host-a:HOST:a host-b:HOST:b"
	for _, srv := range []*e2etest.Server{a, b} {
		e2etest.Eventually(t, 30*time.Second, "host, host-a and host-b on "+srv.URL, func() bool {
			return envNodes(srv) == wantEnvs
		}, func() string { return envNodes(srv) })
	}

	onB := b.CreateSession(t, map[string]any{"environment_id": "host-b", "command": []string{"sleep", "3600"}})
	onA := a.CreateSession(t, map[string]any{"environment_id": "host-a", "command": []string{"sleep", "3600"}})
	if rec := b.Session(t, onB); rec["node"] != "b" {
		t.Errorf("the session created on b in host-b: %v, want node b", rec)
	}
	if rec := a.Session(t, onB); rec["node"] != "b" || rec["environment_id"] != "host-b" {
		t.Errorf("b's session read on a: %v, want node b", rec)
	}
	for _, srv := range []*e2etest.Server{a, b} {
		code, out, stderr := cli(t, srv.URL, "ls", "--json")
		var recs []struct{ ID, Node string }
		if code != 0 || json.Unmarshal([]byte(out), &recs) != nil {
			t.Fatalf("ls --json on %s: exit %d %s %s", srv.URL, code, out, stderr)
		}
		got := map[string]string{}
		for _, r := range recs {
			got[r.ID] = r.Node
		}
		if got[onA] != "a" || got[onB] != "b" || len(got) != 2 {
			t.Errorf("ls --json on %s: %v, want %s on a and %s on b", srv.URL, got, onA, onB)
		}
	}
	// a reads b's session from the database, where b's create stored it
	// STARTING and its ACTIVE follows one write later.
	waitStored(t, dsn, onB, core.StatusActive)
	code, out, _ := cli(t, a.URL, "ls")
	row := func(id, env, node string) string {
		return `(?m)^` + regexp.QuoteMeta(id) + ` +sleep 3600 +` + env + ` +` + node + ` +ACTIVE `
	}
	for _, re := range []string{`(?m)^ID +COMMAND +ENVIRONMENT +NODE +STATUS +CLIENTS`, row(onA, "host-a", "a"), row(onB, "host-b", "b")} {
		if code != 0 || !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("ls on a: exit %d, want %s in\n%s", code, re, out)
		}
	}
	code, out, _ = cli(t, b.URL, "env", "ls")
	for _, re := range []string{`(?m)^ID +NAME +TYPE +NODES +CREATED$`, `(?m)^host-b +Node b's machine +HOST +b `, `(?m)^host +This machine +HOST +a `} {
		if code != 0 || !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("env ls on b: exit %d, want %s in\n%s", code, re, out)
		}
	}

	// A create in host-a through b goes to a (whose advertised address is
	// not reachable in this test: it fails), and never runs on b, even
	// when the request claims placement was done (the hop header).
	if code, body, err := b.Do("POST", "/api/v1/sessions", map[string]any{"environment_id": "host-a"}); err != nil || code == 201 {
		t.Errorf("create in host-a through b: %d %v %v; want it not to run on b", code, body, err)
	}
	req, _ := http.NewRequest("POST", b.URL+"/api/v1/sessions", strings.NewReader(`{"environment_id":"host-a"}`))
	// As node a would forward it: the secret, the scope and the hop.
	req.Header.Set(api.HeaderClusterHop, "1")
	req.Header.Set(api.HeaderClusterSecret, testClusterSecret)
	req.Header.Set(api.HeaderClusterScope, api.ScopeFull)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(msg), "runs on node a, not on b") {
		t.Errorf("create in host-a on b forwarded from a: %d %s, want 400", resp.StatusCode, msg)
	}
}

// TestEnvCommandsNodes: env add --node/--nodes and env update set them;
// env show prints them; a single server's env ls keeps its columns.
func TestEnvCommandsNodes(t *testing.T) {
	srv := startServer(t)
	if code, out, _ := cli(t, srv.URL, "env", "ls"); code != 0 || !regexp.MustCompile(`(?m)^ID +NAME +TYPE +CREATED$`).MatchString(out) {
		t.Errorf("env ls on a single server: exit %d\n%s", code, out)
	}
	if code, out, stderr := cli(t, srv.URL, "env", "add", "--type", "host", "--id", "pinned", "--node", "n1"); code != 0 || out != "pinned\n" {
		t.Fatalf("env add --node: exit %d %q %s", code, out, stderr)
	}
	if code, _, stderr := cli(t, srv.URL, "env", "add", "--type", "host", "--id", "bad", "--nodes", "n1"); code == 0 || !strings.Contains(stderr, "set node instead") {
		t.Errorf("env add HOST --nodes: exit %d %s, want refused", code, stderr)
	}
	if code, out, stderr := cli(t, srv.URL, "env", "show", "pinned"); code != 0 || !regexp.MustCompile(`(?m)^Nodes: +n1$`).MatchString(out) {
		t.Errorf("env show pinned: exit %d\n%s%s", code, out, stderr)
	}
	if code, _, stderr := cli(t, srv.URL, "env", "update", "pinned", "--node", "n2"); code != 0 {
		t.Errorf("env update --node: exit %d %s", code, stderr)
	}
	if code, out, _ := cli(t, srv.URL, "env", "ls"); code != 0 || !regexp.MustCompile(`(?m)^pinned +pinned +HOST +n2 `).MatchString(out) {
		t.Errorf("env ls after update: exit %d\n%s", code, out)
	}
}
