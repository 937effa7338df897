package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
)

// hourNode is node name at http://name:7420 with hourLease: a lease that
// neither expires nor is renewed while a test runs, unless the test
// expires it (expire).
func hourNode(name string) gormstore.NodeOptions { return hourLease(name, "http://"+name+":7420") }

// inUse returns err as a *core.NodeInUseError, failing the test when it is
// not one.
func inUse(t *testing.T, what string, err error) *core.NodeInUseError {
	t.Helper()
	var e *core.NodeInUseError
	if !errors.As(err, &e) || !errors.Is(err, core.ErrNodeInUse) {
		t.Fatalf("%s: %v, want a *core.NodeInUseError wrapping ErrNodeInUse", what, err)
	}
	return e
}

// TestRemoveNode: a node's row is removed only once its lease has expired
// and no session of it is recorded running or node_lost; each refusal
// says which, naming the sessions, and leaves the row. A removed node is
// no longer listed, its ended sessions' records stay, and it registers
// again when it comes back.
func TestRemoveNode(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b := openReal(t, dsn), openReal(t, dsn)
	ctx := context.Background()
	mustRegister(t, a, hourNode("a"))
	lb := mustRegister(t, b, hourNode("b"))

	if err := a.RemoveNode(ctx, "nobody"); !errors.Is(err, core.ErrNodeNotFound) {
		t.Errorf("RemoveNode(nobody): %v, want ErrNodeNotFound", err)
	}

	// b runs: its lease is live, whatever its sessions.
	e := inUse(t, "RemoveNode(b) while b runs", a.RemoveNode(ctx, "b"))
	if !e.LeaseLive || e.Released || e.LeaseLeft < 59*time.Minute || e.Running != 0 || e.NodeLost != 0 {
		t.Errorf("RemoveNode(b) while b runs: %+v, want its lease live for about an hour, nothing else", e)
	}
	if msg := e.Error(); !strings.Contains(msg, "node b cannot be removed: its lease is live") ||
		!strings.Contains(msg, "stop the node first") {
		t.Errorf("RemoveNode(b) while b runs says %q", msg)
	}
	// Nor may a node remove itself: its own lease is live.
	inUse(t, "RemoveNode(a) on a", a.RemoveNode(ctx, "a"))

	// b stops, leaving two sessions running: its lease runs out.
	saveSessions(t, a, "b", core.StatusActive, core.StatusIdle, core.StatusTerminated, core.StatusError)
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	e = inUse(t, "RemoveNode(b) once b stopped leaving sessions running", a.RemoveNode(ctx, "b"))
	if !e.LeaseLive || !e.Released || e.Running != 2 || strings.Join(e.RunningIDs, ",") != "b-0,b-1" {
		t.Errorf("RemoveNode(b) once b stopped: %+v, want its lease running out, released, b-0 and b-1 running", e)
	}

	// b's lease expires; its sessions are recorded running until a sweep.
	expire(t, a, "b")
	e = inUse(t, "RemoveNode(b) with sessions recorded running", a.RemoveNode(ctx, "b"))
	if e.LeaseLive || e.Running != 2 || e.NodeLost != 0 {
		t.Errorf("RemoveNode(b) with sessions recorded running: %+v, want 2 running, the lease expired", e)
	}
	if msg := e.Error(); !strings.Contains(msg, "2 sessions still recorded as running (b-0, b-1)") || !strings.Contains(msg, "ptyhost kill ID") {
		t.Errorf("RemoveNode(b) with sessions recorded running says %q", msg)
	}

	// The sweep records them node_lost: b may take them up again.
	if marked, err := a.MarkLostNodes(ctx); err != nil || len(marked["b"]) != 2 {
		t.Fatalf("MarkLostNodes: %v, %v; want b's two sessions", marked, err)
	}
	e = inUse(t, "RemoveNode(b) with sessions recorded node_lost", a.RemoveNode(ctx, "b"))
	if e.LeaseLive || e.Running != 0 || e.NodeLost != 2 || strings.Join(e.NodeLostIDs, ",") != "b-0,b-1" {
		t.Errorf("RemoveNode(b) with sessions recorded node_lost: %+v, want b-0 and b-1 node_lost", e)
	}
	if msg := e.Error(); !strings.Contains(msg, "2 sessions recorded node_lost (b-0, b-1)") || !strings.Contains(msg, "ptyhost kill ID") {
		t.Errorf("RemoveNode(b) with sessions recorded node_lost says %q", msg)
	}
	// Ending one leaves the other to keep the node.
	if ended, err := a.EndNodeLost(ctx, "b-0", core.ReasonDestroyedNodeLost); !ended || err != nil {
		t.Fatalf("EndNodeLost(b-0): %v, %v", ended, err)
	}
	e = inUse(t, "RemoveNode(b) with one session recorded node_lost", a.RemoveNode(ctx, "b"))
	if e.NodeLost != 1 || strings.Join(e.NodeLostIDs, ",") != "b-1" || !strings.Contains(e.Error(), "1 session recorded node_lost (b-1)") {
		t.Errorf("RemoveNode(b) with b-1 node_lost: %+v: %v", e, e)
	}
	if got, want := listed(t, a), "a http://a:7420 true 0 ; b http://b:7420 false 0 "; got != want {
		t.Errorf("nodes after the refusals: %s\nwant %s", got, want)
	}

	// Only ended sessions left: b is removed, and its records stay.
	if ended, err := a.EndNodeLost(ctx, "b-1", core.ReasonDestroyedNodeLost); !ended || err != nil {
		t.Fatalf("EndNodeLost(b-1): %v, %v", ended, err)
	}
	if err := a.RemoveNode(ctx, "b"); err != nil {
		t.Fatalf("RemoveNode(b) with its sessions ended: %v", err)
	}
	if got, want := listed(t, a), "a http://a:7420 true 0 "; got != want {
		t.Errorf("nodes after b's removal: %s\nwant %s", got, want)
	}
	for id, want := range map[string]string{"b-0": "TERMINATED " + core.ReasonDestroyedNodeLost, "b-2": "TERMINATED", "b-3": "ERROR"} {
		if got := statusOf(t, a, id); got != want {
			t.Errorf("%s after b's removal: %s, want %s", id, got, want)
		}
	}
	if err := a.RemoveNode(ctx, "b"); !errors.Is(err, core.ErrNodeNotFound) {
		t.Errorf("RemoveNode(b) again: %v, want ErrNodeNotFound", err)
	}

	// b comes back: it registers again, and its lease is renewed.
	o := hourNode("b")
	o.Renewal = 20 * time.Millisecond
	back := mustRegister(t, b, o)
	if got, want := listed(t, a), "a http://a:7420 true 0 ; b http://b:7420 true 0 "; got != want {
		t.Errorf("nodes once b registered again: %s\nwant %s", got, want)
	}
	waitRenewed(t, a, back, "b")
}

// waitRenewed waits for a renewal of node's lease l, and fails the test
// if l is lost instead: its row is not its own.
func waitRenewed(t *testing.T, s *gormstore.DB, l *gormstore.NodeLease, node string) {
	t.Helper()
	expiry := func() time.Time {
		t.Helper()
		var at time.Time
		if err := s.Gorm().Raw("SELECT lease_expires_at FROM nodes WHERE name = ?", node).Scan(&at).Error; err != nil {
			t.Fatal(err)
		}
		return at
	}
	first := expiry()
	waitFor(t, 5*time.Second, "a renewal of "+node+"'s lease", func() bool {
		select {
		case <-l.Lost():
			t.Fatalf("node %s lost its lease at a renewal", node)
		default:
		}
		return expiry().After(first)
	})
}

// TestRemoveNodeLeaseExpiredNoSessions: a node that crashed with no
// session, or ran none, is removed as soon as its lease has expired.
func TestRemoveNodeLeaseExpiredNoSessions(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b := openReal(t, dsn), openReal(t, dsn)
	ctx := context.Background()
	mustRegister(t, a, hourNode("a"))
	mustRegister(t, b, hourNode("b"))
	expire(t, a, "b")
	if err := a.RemoveNode(ctx, "b"); err != nil {
		t.Fatalf("RemoveNode(b), its lease expired: %v", err)
	}
	if got, want := listed(t, a), "a http://a:7420 true 0 "; got != want {
		t.Errorf("nodes: %s, want %s", got, want)
	}
}

// TestRemoveNodeRacesRegistration: a node whose lease expired comes back
// while it is being removed, round after round. Whichever comes first,
// the node registers, holds a live row and keeps it: a removal either
// happens before the registration, which then inserts the row again, or
// finds the lease live and leaves the row. Never is the registered node's
// row removed from under it. That holds by construction, the removal
// being one conditional DELETE (RemoveNode); the rounds check it, and
// fail a removal that looks first and deletes after.
func TestRemoveNodeRacesRegistration(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b := openReal(t, dsn), openReal(t, dsn)
	ctx := context.Background()
	mustRegister(t, a, hourNode("a"))
	removed := 0
	for round := range 20 {
		name := fmt.Sprintf("b%d", round)
		mustRegister(t, b, hourNode(name))
		expire(t, a, name)
		var (
			wg          sync.WaitGroup
			start       = make(chan struct{})
			errRemove   error
			errRegister error
			lease       *gormstore.NodeLease
		)
		wg.Go(func() {
			<-start
			errRemove = a.RemoveNode(ctx, name)
		})
		wg.Go(func() {
			<-start
			o := hourNode(name)
			o.Renewal = 10 * time.Millisecond
			lease, errRegister = b.RegisterNode(ctx, o)
		})
		close(start)
		wg.Wait()
		if errRegister != nil {
			t.Fatalf("round %d: the node coming back: %v", round, errRegister)
		}
		switch {
		case errRemove == nil:
			removed++
		case !errors.Is(errRemove, core.ErrNodeInUse):
			t.Fatalf("round %d: RemoveNode: %v, want it done or refused", round, errRemove)
		}
		if !strings.Contains(listed(t, a), name+" http://"+name+":7420 ") {
			t.Fatalf("round %d: the node registered is not listed: %s", round, listed(t, a))
		}
		// A renewal finds the row its own.
		waitRenewed(t, a, lease, name)
		// Released at once: the renewals of every round's lease would
		// add up.
		if err := lease.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("the removal came first in %d rounds of 20", removed)
}
