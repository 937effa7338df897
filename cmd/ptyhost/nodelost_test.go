package main

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// eventStream is a subscription to a server's GET /api/v1/events, keeping
// every message read.
type eventStream struct {
	conn *websocket.Conn
	seen []map[string]any
}

func subscribe(t *testing.T, srv *e2etest.Server) *eventStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, wsproto.WSURL(srv.URL)+"/api/v1/events", nil)
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	return &eventStream{conn: conn}
}

// await reads events until one has the type, session and node given,
// failing after within; it returns that event.
func (s *eventStream) await(t *testing.T, within time.Duration, typ, id, node string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	for {
		_, b, err := s.conn.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s of %s on node %s: %v; read %v", typ, id, node, err, s.seen)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("event %q: %v", b, err)
		}
		s.seen = append(s.seen, m)
		if m["type"] == typ && m["session_id"] == id && m["node"] == node {
			return m
		}
	}
}

// count returns how many events read had the type and session given.
func (s *eventStream) count(typ, id string) int {
	n := 0
	for _, m := range s.seen {
		if m["type"] == typ && m["session_id"] == id {
			n++
		}
	}
	return n
}

// TestClusterEventsAndNodeLost: with nodes a and b on one database, a
// subscriber on a sees b's sessions' events, and a's own once; b killed
// with SIGKILL has its session recorded ERROR node_lost, by a, within its
// lease, and a's subscriber sees it, while a's session runs on untouched;
// b started again on its data directory takes its session, which its
// plugin kept, back.
func TestClusterEventsAndNodeLost(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	a := startNode(t, dsn, "a")
	b := e2etest.Start(t, keepingNodeOptions(dsn, "b"))
	events := subscribe(t, a)

	idB := b.CreateSession(t, map[string]any{"environment_id": "host-b", "command": []string{"/bin/sh"}})
	events.await(t, 10*time.Second, "session_created", idB, "b")
	idA := a.CreateSession(t, map[string]any{"environment_id": "host-a", "command": []string{"/bin/sh"}})
	events.await(t, 10*time.Second, "session_created", idA, "a")

	b.Kill(t)
	killed := time.Now()
	// b's lease expires testNodeLease after its last renewal; a sweeps
	// after each of its renewals (every fifth of the lease).
	ev := events.await(t, testNodeLease+5*time.Second, "session_error", idB, "b")
	t.Logf("b's session recorded node_lost %v after SIGKILL (lease %v)", time.Since(killed).Round(time.Millisecond), testNodeLease)
	if e, _ := ev["error"].(string); !strings.HasPrefix(e, "node_lost") {
		t.Errorf("the event's error %q, want node_lost", e)
	}
	if rec := a.Session(t, idB); rec["status"] != "ERROR" || !strings.HasPrefix(rec["status_reason"].(string), "node_lost") || rec["node"] != "b" {
		t.Errorf("b's session after b was lost: %v; want ERROR node_lost", rec)
	}
	if n := events.count("session_created", idA); n != 1 {
		t.Errorf("a's subscriber got a's own session_created %d times, want once", n)
	}
	// a is unaffected: its session runs and answers.
	if rec := a.Session(t, idA); rec["status"] != "ACTIVE" && rec["status"] != "IDLE" {
		t.Errorf("a's session after b was lost: %v", rec)
	}
	term := a.Attach(t, idA)
	term.Send("echo a-still-$((6*7))\n")
	term.WaitOutput("a-still-42")
	term.Conn.Close()

	// b comes back within its plugin's orphan timeout: the session is its
	// own again, running, and a's subscriber hears it.
	b2 := b.Restart(t)
	events.await(t, 20*time.Second, "session_resumed", idB, "b")
	if rec := a.Session(t, idB); (rec["status"] != "ACTIVE" && rec["status"] != "IDLE") || rec["status_reason"] != nil {
		t.Errorf("b's session after b came back: %v; want it running again", rec)
	}
	term = b2.Attach(t, idB)
	term.Send("echo b-back-$((6*7))\n")
	term.WaitOutput("b-back-42")
	term.Conn.Close()
}

// TestClusterPartitionedNodeStops: node b cut off from the database takes
// its lease as lost once a lease's length passes unrenewed, and stops,
// leaving its session to its plugin, with exit status 75, which a
// supervisor's Restart=on-failure restarts (0 it would not); a records the
// session node_lost; b, started again once the database is back, takes it
// up again, and a stop by SIGTERM or by 'ptyhost stop' exits 0.
func TestClusterPartitionedNodeStops(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	a := startNode(t, dsn, "a")
	// b reaches the database through a proxy of its own: its partition.
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cut := e2etest.NewProxy(t, u.Host)
	u.Host = cut.Addr()
	b := e2etest.Start(t, keepingNodeOptions(u.String(), "b"))
	events := subscribe(t, a)
	idB := b.CreateSession(t, map[string]any{"environment_id": "host-b", "command": []string{"/bin/sh"}})
	events.await(t, 10*time.Second, "session_created", idB, "b")

	cut.Stop()
	partitioned := time.Now()
	// It stops as a single server that lost its claim does.
	err = b.Wait(t, testNodeLease+30*time.Second)
	t.Logf("b stopped %v after its partition (lease %v)", time.Since(partitioned).Round(time.Millisecond), testNodeLease)
	if got := exitStatusOf(err); got != exitLost {
		t.Errorf("b exited with %v (status %d) after it lost its lease, want status %d", err, got, exitLost)
	}
	if log := b.Stderr(); !strings.Contains(log, "lease expired before it could be renewed") || !strings.Contains(log, "it exits with status 75") {
		t.Errorf("b's log does not say its lease was lost, and that it exits with 75:\n%s", log)
	}
	events.await(t, testNodeLease+5*time.Second, "session_error", idB, "b")

	cut.Start()
	b2 := b.Restart(t)
	events.await(t, 20*time.Second, "session_resumed", idB, "b")
	term := b2.Attach(t, idB)
	term.Send("echo b-back-$((6*7))\n")
	term.WaitOutput("b-back-42")
	term.Conn.Close()

	// The stops an operator asks for exit 0, which Restart=on-failure
	// leaves stopped.
	if err := b2.Stop(t, 30*time.Second); err != nil {
		t.Errorf("b stopped by SIGTERM: %v, want exit status 0", err)
	}
	b3 := b2.Restart(t)
	if code, _, stderr := cli(t, b3.URL, "stop", "--hang-up"); code != 0 {
		t.Errorf("ptyhost stop: exit %d: %s", code, stderr)
	}
	if err := b3.Wait(t, 30*time.Second); err != nil {
		t.Errorf("b stopped by 'ptyhost stop': %v, want exit status 0", err)
	}
}
