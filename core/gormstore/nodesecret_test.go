package gormstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

const (
	testSecret  = "the-cluster-secret-0123456789"
	otherSecret = "another-cluster-secret-0123456789"
)

// secretsListed returns s's nodes as "name:cluster_secret", one per node.
func secretsListed(t *testing.T, s *gormstore.DB) string {
	t.Helper()
	nodes, err := s.ListNodes(context.Background())
	if err != nil {
		t.Fatalf("ListNodes: %v", err)
	}
	var parts []string
	for _, n := range nodes {
		parts = append(parts, n.Name+":"+n.ClusterSecret)
	}
	return strings.Join(parts, " ")
}

// fastNode is a node named name with secret, renewing every 50 ms.
func fastNode(name, secret string) gormstore.NodeOptions {
	return gormstore.NodeOptions{Name: name, URL: "http://" + name + ":7420", ClusterSecret: secret,
		LeaseTTL: 5 * time.Second, Renewal: 50 * time.Millisecond}
}

// TestNodeClusterSecrets: each node's row holds a fingerprint of its
// cluster secret, not the secret; every node lists whether each other
// node's secret is its own. A node without one, as of a ptyhost from
// before them, is unknown, not a mismatch, and so is a row an older
// ptyhost took over, which leaves the fingerprint of its last holder. A
// node logs an error once for each node with another secret: at its
// start, and when it first sees one join, never again at each renewal.
func TestNodeClusterSecrets(t *testing.T) {
	dsn := postgresFreshDSN(t)
	var aLog, cLog e2etest.Buffer
	a := openWith(t, dsn, gormstore.Options{Logger: slog.New(slog.NewTextHandler(&aLog, nil))})
	b, old, d, reader := openReal(t, dsn), openReal(t, dsn), openReal(t, dsn), openReal(t, dsn)
	c := openWith(t, dsn, gormstore.Options{Logger: slog.New(slog.NewTextHandler(&cLog, nil))})

	mustRegister(t, d, fastNode("d", otherSecret))
	// An older ptyhost takes d's row over (as its RegisterNode would: it
	// knows nothing of the fingerprint): d's stays, but counts no more.
	if err := reader.Gorm().Exec(`UPDATE nodes SET instance = 'older-ptyhost' WHERE name = 'd'`).Error; err != nil {
		t.Fatal(err)
	}
	mustRegister(t, a, fastNode("a", testSecret))
	mustRegister(t, b, fastNode("b", testSecret))
	mustRegister(t, old, fastNode("old", ""))
	const wantA = "a:same b:same c:differs d:unknown old:unknown"
	mustRegister(t, c, fastNode("c", otherSecret))
	if got := secretsListed(t, a); got != wantA {
		t.Errorf("listed by a: %s\nwant %s", got, wantA)
	}
	if got, want := secretsListed(t, c), "a:differs b:differs c:same d:unknown old:unknown"; got != want {
		t.Errorf("listed by c: %s\nwant %s", got, want)
	}
	if got, want := secretsListed(t, old), "a:unknown b:unknown c:unknown d:unknown old:unknown"; got != want {
		t.Errorf("listed by a node without a secret: %s\nwant %s", got, want)
	}
	if got, want := secretsListed(t, reader), "a: b: c: d: old:"; got != want {
		t.Errorf("listed by a store that is no node: %s\nwant %s", got, want)
	}

	var rows []struct{ Name, SecretFingerprint string }
	if err := reader.Gorm().Raw(`SELECT name, secret_fingerprint FROM nodes ORDER BY name`).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	fp := map[string]string{}
	for _, r := range rows {
		fp[r.Name] = r.SecretFingerprint
		if strings.Contains(r.SecretFingerprint, testSecret) || strings.Contains(r.SecretFingerprint, otherSecret) {
			t.Errorf("node %s's row holds its secret: %q", r.Name, r.SecretFingerprint)
		}
	}
	if fp["a"] == "" || fp["a"] != fp["b"] || fp["a"] == fp["c"] || fp["c"] != fp["d"] || fp["old"] != "" {
		t.Errorf("fingerprints %q: want a's and b's equal, c's and d's equal and other, none for old", fp)
	}

	// c, at its start, found a and b (live, with another secret) and said
	// so once each; a saw c join at a renewal and said so once, however
	// many renewals later.
	waitFor(t, 5*time.Second, "a's error about c", func() bool { return strings.Contains(aLog.String(), "other_node=c") })
	time.Sleep(500 * time.Millisecond) // ten renewals
	for _, tc := range []struct {
		log  *e2etest.Buffer
		msg  string
		want []string
	}{
		{&aLog, "a node runs with a cluster secret other than this node's", []string{"c"}},
		{&cLog, "this node starts with a cluster secret other than that of a running node", []string{"a", "b"}},
	} {
		log := tc.log.String()
		if n := strings.Count(log, "level=ERROR"); n != len(tc.want) {
			t.Errorf("%d errors logged, want %d:\n%s", n, len(tc.want), log)
		}
		for _, other := range tc.want {
			var about []string
			for line := range strings.Lines(log) {
				if strings.Contains(line, "other_node="+other+" ") {
					about = append(about, line)
				}
			}
			if len(about) != 1 || !strings.Contains(about[0], tc.msg) {
				t.Errorf("logged about node %s: %q; want once %q", other, about, tc.msg)
			}
		}
		if strings.Contains(log, testSecret) || strings.Contains(log, otherSecret) || strings.Contains(log, fp["a"]) || strings.Contains(log, fp["c"]) {
			t.Errorf("the log shows a secret or a fingerprint:\n%s", log)
		}
	}
}

// TestNodeClusterSecretMigration: a database a ptyhost from before the
// fingerprints made gets their columns, and its rows, and those an older
// node still inserts, list as unknown beside a node of today.
func TestNodeClusterSecretMigration(t *testing.T) {
	dsn := postgresFreshDSN(t)
	before := openReal(t, dsn)
	// The schema as it was: no fingerprint columns, no cluster table.
	for _, stmt := range []string{
		`ALTER TABLE nodes DROP COLUMN secret_fingerprint, DROP COLUMN fingerprint_instance`,
		`DROP TABLE cluster`,
	} {
		if err := before.Gorm().Exec(stmt).Error; err != nil {
			t.Fatal(err)
		}
	}
	// insertOld registers name as an older ptyhost does.
	insertOld := func(s *gormstore.DB, name string) {
		t.Helper()
		err := s.Gorm().Exec(`INSERT INTO nodes (name, url, version, instance, started_at, lease_expires_at, released, ready)
			VALUES (?, ?, 'v0', ?, now(), now() + interval '1 minute', false, true)`, name, "http://"+name+":7420", name+"-instance").Error
		if err != nil {
			t.Fatalf("an older node's insert: %v", err)
		}
	}
	insertOld(before, "old1")

	now := openReal(t, dsn)
	mustRegister(t, now, fastNode("new", testSecret))
	insertOld(now, "old2")
	if got, want := secretsListed(t, now), "new:same old1:unknown old2:unknown"; got != want {
		t.Errorf("listed by the new node: %s\nwant %s", got, want)
	}
	if got := listed(t, now); !strings.Contains(got, "old1 http://old1:7420 true 0 v0") {
		t.Errorf("nodes: %s; want old1 healthy", got)
	}
}

// TestClusterIdentity: the cluster's identity, which salts the
// fingerprints, is drawn once per database: two clusters with one secret
// record different fingerprints.
func TestClusterIdentity(t *testing.T) {
	var fps []string
	for i := range 2 {
		s := openReal(t, postgresFreshDSN(t))
		mustRegister(t, s, fastNode(fmt.Sprintf("n%d", i), testSecret))
		var fp string
		if err := s.Gorm().Raw(`SELECT secret_fingerprint FROM nodes`).Row().Scan(&fp); err != nil {
			t.Fatal(err)
		}
		fps = append(fps, fp)
	}
	if fps[0] == "" || fps[0] == fps[1] {
		t.Errorf("fingerprints of one secret in two clusters: %q, want two different ones", fps)
	}
}
