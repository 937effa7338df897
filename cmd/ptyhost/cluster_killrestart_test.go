package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestClusterNodeKilledRestartsAtOnce: node b killed with SIGKILL and
// started again at once, as its supervisor would, takes its name over
// from its dead process well within its lease, instead of being refused
// ("already running") until the lease runs out, and says so in its log.
// Its HOST session is never recorded node_lost (the lease never expired):
// b takes it up as after a stop within its lease, and it is attachable,
// on b and through a, with its output from before the kill in the replay.
func TestClusterNodeKilledRestartsAtOnce(t *testing.T) {
	const bLease = 30 * time.Second
	dsn, _ := postgresSchemaDSN(t)
	a := startNode(t, dsn, "a")
	// b is reachable from a, and leaves its session to its plugin when
	// killed, for its restart to take up.
	bOpts := reachableNodeOptions(t, dsn, "b", "--node-lease", bLease.String(), "--orphan-timeout", restartOrphanTimeout)
	bOpts.KeepSessions = true
	b := e2etest.Start(t, bOpts)
	events := subscribe(t, a)
	id := b.CreateSession(t, map[string]any{"environment_id": "host-b", "command": []string{"/bin/sh"}})
	events.await(t, 10*time.Second, "session_created", id, "b")
	term := b.Attach(t, id)
	term.Send("echo before-$((6*7))\n")
	term.WaitOutput("before-42")
	term.Conn.Close()

	pid := b.Pid(t)
	b.Kill(t)
	killed := time.Now()
	b2 := b.Restart(t)
	took := time.Since(killed)
	t.Logf("b serves again %v after its SIGKILL (lease %v)", took.Round(time.Millisecond), bLease)
	if took > bLease/2 {
		t.Errorf("b served again %v after its SIGKILL: not well within its lease of %v", took, bLease)
	}
	log := b2.Stderr()
	for _, want := range []string{"took the node's registration over from a process of this machine that is gone",
		"node=b", fmt.Sprintf("pid=%d", pid)} {
		if !strings.Contains(log, want) {
			t.Errorf("b's log after the restart does not say %q:\n%s", want, log)
		}
	}

	events.await(t, 20*time.Second, "session_resumed", id, "b")
	if n := events.count("session_error", id); n != 0 {
		t.Errorf("b's session was recorded lost %d times over a restart within b's lease", n)
	}
	rec := a.Session(t, id)
	if (rec["status"] != "ACTIVE" && rec["status"] != "IDLE") || rec["status_reason"] != nil || rec["node"] != "b" {
		t.Errorf("b's session after b came back, read on a: %v; want it running on b, never node_lost", rec)
	}
	e2etest.Eventually(t, 10*time.Second, "b healthy again", func() bool {
		return strings.Contains(nodeLines(nodesOf(t, a)), "b "+b2.URL+" true 1")
	}, func() string { return nodeLines(nodesOf(t, a)) })

	// The replay holds what the session wrote before the kill, and it
	// runs: on b, and through a.
	term = b2.Attach(t, id)
	term.WaitOutput("before-42")
	term.Send("echo after-$((6*7))\n")
	term.WaitOutput("after-42")
	term.Conn.Close()
	term = a.Attach(t, id)
	term.WaitOutput("after-42")
	term.Conn.Close()
}
