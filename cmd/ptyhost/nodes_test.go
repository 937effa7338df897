package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// testClusterSecret is the cluster secret of the tests' nodes.
const testClusterSecret = "test-cluster-secret-0123456789"

// testNodeLease is the tests' --node-lease: short, so that a killed node
// turns unhealthy within seconds.
const testNodeLease = 2 * time.Second

// startNode starts `ptyhost serve` (the binary, so that it can be killed)
// as node name of a cluster on the PostgreSQL database dsn.
func startNode(t *testing.T, dsn, name string) *e2etest.Server {
	t.Helper()
	return e2etest.Start(t, nodeOptions(dsn, name))
}

// nodeOptions are the options of node name on dsn; the cluster secret
// comes from the environment, as an operator should give it.
func nodeOptions(dsn, name string) e2etest.Options {
	return e2etest.Options{
		Args: []string{"--db", dsn, "--node-name", name, "--advertise-url", "http://" + name + ".cluster.test:7420",
			"--node-lease", testNodeLease.String()},
		Env: []string{"PTYHOST_CLUSTER_SECRET=" + testClusterSecret},
	}
}

// keepingNodeOptions are nodeOptions for a node whose sessions outlive it
// (a stop or a kill leaves them to its plugins) for restartOrphanTimeout,
// so that the node started again takes them up.
func keepingNodeOptions(dsn, name string) e2etest.Options {
	o := nodeOptions(dsn, name)
	o.KeepSessions = true
	// What the nodes did around a kill or a restart is in the log a
	// failure shows, as startKeeping's: a session not taken up again
	// says why only at info.
	o.LogLevel = "info"
	o.Args = append(o.Args, "--orphan-timeout", restartOrphanTimeout)
	return o
}

// nodesOf returns what `ptyhost nodes --json` on srv prints.
func nodesOf(t *testing.T, srv *e2etest.Server) []node {
	t.Helper()
	code, out, stderr := cli(t, srv.URL, "nodes", "--json")
	if code != 0 {
		t.Fatalf("nodes --json: exit %d: %s", code, stderr)
	}
	var nodes []node
	if err := json.Unmarshal([]byte(out), &nodes); err != nil {
		t.Fatalf("nodes --json printed %q: %v", out, err)
	}
	return nodes
}

// nodeLine is a node as one line: name url healthy sessions.
func nodeLines(nodes []node) string {
	var lines []string
	for _, n := range nodes {
		lines = append(lines, fmt.Sprintf("%s %s %v %d", n.Name, n.URL, n.Healthy, n.Sessions))
	}
	return strings.Join(lines, "; ")
}

// TestNodesCluster: two servers share one PostgreSQL database as nodes a
// and b; each lists both, healthy, with the sessions each runs, and the
// second one to start leaves the first one's session alone. A second
// process named a is refused while a lives, and so is a single server on
// the database; b killed with SIGKILL lists as unhealthy within its lease.
// The cluster secret reaches neither a session nor the log.
func TestNodesCluster(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	a := startNode(t, dsn, "a")
	id := a.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c",
		`printf 'secret:%s.\n' "$PTYHOST_CLUSTER_SECRET"; exec sleep 3600`}})
	if rec := a.Session(t, id); rec["node"] != "a" {
		t.Errorf("the session's record %v, want node a", rec)
	}
	// a's create stored the session STARTING, its ACTIVE one write later.
	waitStored(t, dsn, id, core.StatusActive)
	b := startNode(t, dsn, "b")
	// b reads a's session from the database: ACTIVE, not recorded as lost
	// by b's start.
	if rec := b.Session(t, id); rec["status"] != "ACTIVE" || rec["node"] != "a" {
		t.Errorf("a's session after b started, read on b: %v; want it ACTIVE on a, left alone by b", rec)
	}
	want := "a http://a.cluster.test:7420 true 1; b http://b.cluster.test:7420 true 0"
	for _, srv := range []*e2etest.Server{a, b} {
		if got := nodeLines(nodesOf(t, srv)); got != want {
			t.Errorf("nodes on %s: %s\nwant %s", srv.URL, got, want)
		}
	}
	code, out, _ := cli(t, b.URL, "nodes")
	table := regexp.MustCompile(`(?m)^NAME +URL +HEALTHY +SESSIONS +VERSION +SECRET\na +http://a\.cluster\.test:7420 +yes +1 +\S+ +same\nb +http://b\.cluster\.test:7420 +yes +0 +\S+ +same\n$`)
	if code != 0 || !table.MatchString(out) {
		t.Errorf("nodes: exit %d\n%s", code, out)
	}

	term := a.Attach(t, id)
	term.WaitOutput("secret:.")
	term.Conn.Close()

	out2, err := e2etest.RunRefused(t, nodeOptions(dsn, "a"), 30*time.Second)
	if err == nil || !strings.Contains(out2, "node a is already running at http://a.cluster.test:7420") {
		t.Errorf("a second node a: %v\n%s\nwant it refused, naming where a runs", err, out2)
	}
	out2, err = e2etest.RunRefused(t, e2etest.Options{Args: []string{"--db", dsn}}, 30*time.Second)
	if err == nil || !strings.Contains(out2, "the nodes of a cluster share it") {
		t.Errorf("a single server on the cluster's database: %v\n%s\nwant it refused", err, out2)
	}

	b.Kill(t)
	killed := time.Now()
	e2etest.Eventually(t, testNodeLease+3*time.Second, "b unhealthy after SIGKILL", func() bool {
		return nodeLines(nodesOf(t, a)) == "a http://a.cluster.test:7420 true 1; b http://b.cluster.test:7420 false 0"
	}, func() string { return nodeLines(nodesOf(t, a)) })
	t.Logf("b turned unhealthy %v after SIGKILL (lease %v)", time.Since(killed).Round(time.Millisecond), testNodeLease)

	for _, srv := range []*e2etest.Server{a, b} {
		if log := srv.Stderr(); strings.Contains(log, testClusterSecret) {
			t.Errorf("the cluster secret is in a server's log:\n%s", log)
		}
	}
}

// TestNodesSingleServer: without node settings, a server lists itself,
// "local", at the address it listens on, and its sessions carry no node;
// it has no registry to remove a node from, and says so.
func TestNodesSingleServer(t *testing.T) {
	srv := startServer(t)
	id := srv.CreateSession(t, map[string]any{"command": []string{"sleep", "3600"}})
	if rec := srv.Session(t, id); rec["node"] != nil {
		t.Errorf("a single server's session has a node: %v", rec)
	}
	if got, want := nodeLines(nodesOf(t, srv)), "local "+srv.URL+" true 1"; got != want {
		t.Errorf("nodes: %s, want %s", got, want)
	}
	code, stdout, stderr := cli(t, srv.URL, "nodes", "rm", "local")
	if want := "ptyhost: nodes rm local: invalid argument: this server is not a node of a cluster: it keeps no registry of nodes to remove \"local\" from (HTTP 400)\n"; code != 1 || stdout != "" || stderr != want {
		t.Errorf("nodes rm local: exit %d\nstdout %q\nstderr %q\nwant exit 1, %q", code, stdout, stderr, want)
	}
}

// TestClusterSettingsRefused: cluster settings that cannot work refuse the
// start with an error naming the setting, never the secret.
func TestClusterSettingsRefused(t *testing.T) {
	const pg = "postgres://ptyhost@db.test/ptyhost"
	good := []string{"--node-name", "a", "--advertise-url", "http://a.test:7420", "--cluster-secret", testClusterSecret}
	with := func(args ...string) []string { return append(append([]string{}, good...), args...) }
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"sqlite", good, nil, "need a PostgreSQL database"},
		{"sqlite by env", []string{"--db", "sqlite::memory:"}, []string{"PTYHOST_NODE_NAME=a"}, "need a PostgreSQL database"},
		{"no secret", []string{"--db", pg, "--node-name", "a", "--advertise-url", "http://a.test:7420"}, nil, "--cluster-secret (PTYHOST_CLUSTER_SECRET) is missing"},
		{"no name", []string{"--db", pg, "--cluster-secret", testClusterSecret}, nil, "--node-name (PTYHOST_NODE_NAME) is missing"},
		{"no URL", []string{"--db", pg}, []string{"PTYHOST_NODE_NAME=a", "PTYHOST_CLUSTER_SECRET=" + testClusterSecret}, "--advertise-url (PTYHOST_ADVERTISE_URL) is missing"},
		{"short secret", with("--db", pg, "--cluster-secret", "short-secret"), nil, "is 12 bytes long: want at least 16"},
		{"short secret by env", []string{"--db", pg, "--node-name", "a", "--advertise-url", "http://a.test:7420"}, []string{"PTYHOST_CLUSTER_SECRET=short-secret"}, "is 12 bytes long"},
		{"bad name", with("--db", pg, "--node-name", "Node_A"), nil, `--node-name "Node_A": want 1 to 63`},
		{"long name", with("--db", pg, "--node-name", strings.Repeat("a", 64)), nil, "want 1 to 63"},
		{"relative URL", with("--db", pg, "--advertise-url", "a.test:7420"), nil, `--advertise-url "a.test:7420": want an absolute`},
		{"other scheme", with("--db", pg, "--advertise-url", "ftp://a.test"), nil, "want an absolute http:// or https:// URL"},
		{"URL with password", with("--db", pg, "--advertise-url", "http://u:short-secret@a.test"), nil, `--advertise-url "http://u:xxxxx@a.test": want an absolute`},
		{"short lease", with("--db", pg, "--node-lease", "100ms"), nil, "--node-lease 100ms: want at least 1s"},
		// A request with the secret skips the token checks and says its
		// own scope: equal to the read-only token, it would make that
		// token full.
		{"secret is the read token", with("--db", pg, "--token", "full-token-0123456789", "--read-token", testClusterSecret), nil, "--cluster-secret must differ from --read-token"},
		{"secret is the token", with("--db", pg, "--token", testClusterSecret), nil, "--cluster-secret must differ from --token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, kv := range []string{"PTYHOST_NODE_NAME", "PTYHOST_ADVERTISE_URL", "PTYHOST_CLUSTER_SECRET", "PTYHOST_DB", "PTYHOST_TOKEN", "PTYHOST_READ_TOKEN"} {
				t.Setenv(kv, "")
				os.Unsetenv(kv)
			}
			for _, kv := range tc.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			args := append([]string{"serve", "--data-dir", t.TempDir()}, tc.args...)
			code, stdout, stderr := runCmd(t, args...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Errorf("serve %q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, stdout, stderr, tc.want)
			}
			if strings.Contains(stderr, "short-secret") || strings.Contains(stderr, testClusterSecret) {
				t.Errorf("the error shows the secret: %q", stderr)
			}
		})
	}
}

// TestClusterSettingsFromFile: the configuration file's keys make a node
// too, and its secret counts as a token that others must not read.
func TestClusterSettingsFromFile(t *testing.T) {
	for _, kv := range []string{"PTYHOST_NODE_NAME", "PTYHOST_ADVERTISE_URL", "PTYHOST_CLUSTER_SECRET", "PTYHOST_DB", "PTYHOST_NODE_LEASE"} {
		t.Setenv(kv, "")
		os.Unsetenv(kv)
	}
	path := filepath.Join(t.TempDir(), "ptyhost.hcl")
	body := `db = "postgres://ptyhost@db.test/ptyhost"
node_name = "a"
advertise_url = "https://a.test/"
cluster_secret = "` + testClusterSecret + `"
node_lease = "30s"
`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := parseServeFlags([]string{"--config", path}, stdio{})
	if err != nil {
		t.Fatal(err)
	}
	want := clusterConfig{nodeName: "a", advertiseURL: "https://a.test", secret: testClusterSecret, lease: 30 * time.Second}
	if c.cluster != want || !c.tokenInFile {
		t.Errorf("cluster %+v, secret exposed %v; want %+v, true", c.cluster, c.tokenInFile, want)
	}
	t.Setenv("PTYHOST_NODE_NAME", "b")
	if c, err := parseServeFlags([]string{"--config", path}, stdio{}); err != nil || c.cluster.nodeName != "b" {
		t.Errorf("PTYHOST_NODE_NAME over the file: %q, %v; want b", c.cluster.nodeName, err)
	}
	if c, err := parseServeFlags([]string{"--config", path, "--node-name", "c"}, stdio{}); err != nil || c.cluster.nodeName != "c" {
		t.Errorf("--node-name over the variable: %q, %v; want c", c.cluster.nodeName, err)
	}
}
