package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestClusterPlannedStop: b stopped the default way (its sessions go on in
// its plugins) lists as unhealthy at once, but its session is not lost:
// b restarted within its lease takes it up without its ever being
// recorded node_lost. Stopped again and not back, b's session is recorded
// node_lost only once b's lease has run out; an attach through a is then
// 503 node_lost (the CLI tries again), not 410; b back takes it up.
func TestClusterPlannedStop(t *testing.T) {
	const bLease = 10 * time.Second
	dsn, _ := postgresSchemaDSN(t)
	a := startNode(t, dsn, "a")
	bOpts := keepingNodeOptions(dsn, "b")
	bOpts.Args = append(bOpts.Args, "--node-lease", bLease.String()) // the later --node-lease wins
	b := e2etest.Start(t, bOpts)
	events := subscribe(t, a)
	id := b.CreateSession(t, map[string]any{"environment_id": "host-b", "command": []string{"/bin/sh"}})
	events.await(t, 10*time.Second, "session_created", id, "b")

	if err := b.Stop(t, 30*time.Second); err != nil {
		t.Fatalf("stop b: %v", err)
	}
	if got := nodeLines(nodesOf(t, a)); !strings.Contains(got, "b http://b.cluster.test:7420 false 1") {
		t.Errorf("nodes after b stopped: %s; want b unhealthy, with its session", got)
	}
	b2 := b.Restart(t)
	events.await(t, 20*time.Second, "session_resumed", id, "b")
	if n := events.count("session_error", id); n != 0 {
		t.Errorf("b's session was recorded lost %d times over a restart within b's lease", n)
	}

	if err := b2.Stop(t, 30*time.Second); err != nil {
		t.Fatalf("stop b again: %v", err)
	}
	stopped := time.Now()
	wantNodeLost503(t, a, id, "b stopped")
	events.await(t, bLease+10*time.Second, "session_error", id, "b")
	took := time.Since(stopped)
	t.Logf("b's session recorded node_lost %v after b stopped (lease %v)", took.Round(time.Millisecond), bLease)
	if took < bLease/2 {
		t.Errorf("recorded node_lost %v after b stopped: before b's lease could run out", took)
	}
	wantNodeLost503(t, a, id, "recorded node_lost")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := wsproto.Dial(ctx, a.AttachURL(id), wsproto.DialOptions{})
	var he *wsproto.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable || final(err) {
		t.Errorf("attach through a, recorded node_lost: %v (final %v); want a 503 that the CLI retries", err, final(err))
	}

	b3 := b2.Restart(t)
	events.await(t, 20*time.Second, "session_resumed", id, "b")
	term := b3.Attach(t, id)
	term.Send("echo back-$((6*7))\n")
	term.WaitOutput("back-42")
	term.Conn.Close()
}

// wantNodeLost503 fails the test unless a plain GET of session id's
// attach through srv is 503 node_lost, naming b.
func wantNodeLost503(t *testing.T, srv *e2etest.Server, id, when string) {
	t.Helper()
	code, body, err := srv.Do("GET", "/api/v1/sessions/"+id+"/attach", nil)
	if err != nil || code != http.StatusServiceUnavailable || body["reason"] != "node_lost" || body["node"] != "b" {
		t.Errorf("attach through a, %s: %d %v %v; want 503 node_lost naming b", when, code, body, err)
	}
}
