package main

import (
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestServerStopsWhenTakenOver: a single server whose claim on the
// database another server took over (its row rewritten, as the other's
// takeover does) stops with exit status 0, unlike a node that lost its
// lease (75, TestClusterPartitionedNodeStops): started again, it would
// claim the database the moment the other stopped, and end its sessions.
func TestServerStopsWhenTakenOver(t *testing.T) {
	srv := e2etest.Start(t, e2etest.Options{KeepSessions: true})
	srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}})

	db, err := gormstore.Open(t.Context(), "sqlite:"+filepath.Join(srv.DataDir, "ptyhost.db"), gormstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Gorm().Exec(`UPDATE server_owner SET node_id = 'another-server', hostname = 'elsewhere', pid = 1`).Error; err != nil {
		t.Fatal(err)
	}
	// The server's next heartbeat, within 5 s, finds the row another's.
	err = srv.Wait(t, gormstore.DefaultLeaseRenewal+30*time.Second)
	if err != nil {
		t.Errorf("the server taken over exited with %v (status %d), want status 0\n%s", err, exitStatusOf(err), srv.Stderr())
	}
	if !strings.Contains(srv.Stderr(), "another server took the database over") {
		t.Errorf("the server taken over did not say why it stopped:\n%s", srv.Stderr())
	}
}

// stoppedLogTime is the time of the server's "stopped" log line (JSON).
var stoppedLogTime = regexp.MustCompile(`"time":"([^"]+)","level":"INFO","msg":"stopped; `)

// TestNodeShutdownHungDatabase: SIGTERM to a node whose database hangs
// (every statement, and every new connection, waits) stops it within one
// --shutdown-timeout, the release of its lease included, and it says
// "stopped" only once it has, just before it exits 0.
func TestNodeShutdownHungDatabase(t *testing.T) {
	dsn, proxy := postgresSchemaDSN(t)
	// A connection waits as long as the database makes it, as without
	// the tests' connect_timeout (2 s).
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del("connect_timeout")
	u.RawQuery = q.Encode()
	const timeout = 3 * time.Second
	// The stop leaves the session, as by default; its plugin ends it
	// after e2etest's short orphan timeout.
	o := nodeOptions(u.String(), "b")
	o.KeepSessions = true
	// A lease long enough that the node does not stop for having lost it.
	o.Args = append(o.Args, "--node-lease", "60s", "--shutdown-timeout", timeout.String(), "--log-format", "json")
	o.LogLevel = "info"
	b := e2etest.Start(t, o)
	b.CreateSession(t, map[string]any{"environment_id": "host-b", "command": []string{"/bin/sh"}})

	proxy.Hang()
	start := time.Now()
	b.Signal(t, syscall.SIGTERM)
	err = b.Wait(t, 30*time.Second)
	exited := time.Now()
	took := exited.Sub(start)
	t.Logf("b stopped %v after SIGTERM (--shutdown-timeout %v)", took.Round(time.Millisecond), timeout)
	if err != nil {
		t.Errorf("the node stopped by SIGTERM: %v, want exit status 0", err)
	}
	// The plugins' kill, if any, may end half a second after the deadline
	// (docs/plugins.md, "Supervision"); a loaded machine adds some.
	if took > timeout+1500*time.Millisecond {
		t.Errorf("the stop took %v, want it within --shutdown-timeout %v", took, timeout)
	}
	m := stoppedLogTime.FindStringSubmatch(b.Stderr())
	if m == nil {
		t.Fatalf("no \"stopped\" line in the log:\n%s", b.Stderr())
	}
	at, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil {
		t.Fatal(err)
	}
	if early := exited.Sub(at); early > time.Second {
		t.Errorf("the server said it stopped %v before it exited", early.Round(time.Millisecond))
	}
	proxy.Resume()
}
