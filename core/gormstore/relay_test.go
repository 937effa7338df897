package gormstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
)

// received collects what a relay delivers, for a test to wait on.
type received struct {
	mu     sync.Mutex
	events []core.Event
	more   chan struct{} // signalled at each event
}

func newReceived() *received { return &received{more: make(chan struct{}, 1)} }

func (r *received) deliver(e core.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

// lines returns the events so far, one "type session node" each.
func (r *received) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s", e.Type, e.SessionID, e.Node)))
	}
	return out
}

// await waits until the events delivered are want, failing after 10 s.
func (r *received) await(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		got := r.lines()
		if strings.Join(got, "; ") == strings.Join(want, "; ") {
			return
		}
		if len(got) > len(want) {
			t.Fatalf("delivered %q, want %q", got, want)
		}
		select {
		case <-r.more:
		case <-deadline.C:
			t.Fatalf("delivered %q, want %q (waited 10s)", got, want)
		}
	}
}

// event returns the i-th event delivered.
func (r *received) event(i int) core.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[i]
}

// runRelay makes node's relay on s and runs it until the test ends,
// returning what it delivers.
func runRelay(t *testing.T, s *gormstore.DB, node string) (*gormstore.Relay, *received) {
	t.Helper()
	r, err := s.NewRelay(node)
	if err != nil {
		t.Fatalf("NewRelay: %v", err)
	}
	got := newReceived()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Receive(ctx, got.deliver)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r, got
}

// awaitListening sends probes from r until got delivers one: the other
// relay listens. It returns once every probe that will come came, with
// got emptied.
func awaitListening(t *testing.T, from *gormstore.Relay, node string, got *received) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		from.Send(core.Event{Type: "probe", SessionID: fmt.Sprint(i), Node: node, Time: time.Now()})
		select {
		case <-got.more:
			// The relay listens since before the probe it delivered was
			// sent, so every later probe comes too: wait for the last
			// one, or it could come after the events the test awaits.
			last := fmt.Sprintf("probe %d %s", i, node)
			for !slices.Contains(got.lines(), last) {
				select {
				case <-got.more:
				case <-time.After(time.Until(deadline)):
					t.Fatalf("the last probe never came: delivered %q", got.lines())
				}
			}
			got.mu.Lock()
			got.events = nil
			got.mu.Unlock()
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay did not listen within 10s")
		}
	}
}

// TestRelay: a node's events reach the other node's relay, in order, with
// what they carry; a relay does not deliver its own; a relay in another
// schema of the database hears nothing; an error text too long for a
// notification is cut to fit.
func TestRelay(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b := openReal(t, dsn), openReal(t, dsn)
	ra, gotA := runRelay(t, a, "a")
	rb, gotB := runRelay(t, b, "b")
	other := openReal(t, postgresFreshDSN(t))
	_, gotOther := runRelay(t, other, "a")
	awaitListening(t, ra, "a", gotB)
	awaitListening(t, rb, "b", gotA)

	at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	ra.Send(core.Event{Type: core.SessionCreated, SessionID: "s1", Node: "a", Time: at})
	ra.Send(core.Event{Type: core.SessionExited, SessionID: "s1", Node: "a", Time: at,
		Exit: &core.ExitStatus{Code: 137, Signal: "SIGKILL"}})
	long := strings.Repeat("é", 6000) // 12000 bytes
	ra.Send(core.Event{Type: core.SessionError, SessionID: "s2", Node: "a", Time: at, Err: errors.New(long)})
	// An exit whose reason repeats the long error: both are cut.
	ra.Send(core.Event{Type: core.SessionExited, SessionID: "s4", Node: "a", Time: at,
		Exit: &core.ExitStatus{Code: -1, Reason: long}, Err: errors.New(long)})
	gotB.await(t, "session_created s1 a", "session_exited s1 a", "session_error s2 a", "session_exited s4 a")
	if e := gotB.event(3); e.Exit == nil || !strings.HasSuffix(e.Exit.Reason, "…(cut)") || e.Err == nil {
		t.Errorf("the exit with a long reason came as %+v", e)
	}
	if e := gotB.event(0); !e.Time.Equal(at) {
		t.Errorf("time %v, want %v", e.Time, at)
	}
	if e := gotB.event(1); e.Exit == nil || e.Exit.Code != 137 || e.Exit.Signal != "SIGKILL" {
		t.Errorf("exit %+v, want 137 SIGKILL", e.Exit)
	}
	if e := gotB.event(2); e.Err == nil || !strings.HasPrefix(e.Err.Error(), "éé") || !strings.HasSuffix(e.Err.Error(), "…(cut)") ||
		len(e.Err.Error()) >= 8000 {
		t.Errorf("a long error came as %d bytes, want it cut under 8000", len(fmt.Sprint(e.Err)))
	}

	// b's event is delivered to a after a's own, which a skipped.
	rb.Send(core.Event{Type: core.SessionDestroyed, SessionID: "s3", Node: "b", Time: at})
	gotA.await(t, "session_destroyed s3 b")
	if got := gotOther.lines(); len(got) != 0 {
		t.Errorf("a relay in another schema delivered %q", got)
	}
}

// TestRelayReconnects: when a relay's listening connection breaks, it
// listens again and delivers events_lost, and the events after it flow.
func TestRelayReconnects(t *testing.T) {
	dsn := postgresFreshDSN(t)
	a, b := openReal(t, dsn), openReal(t, dsn)
	ra, gotA := runRelay(t, a, "a")
	rb, gotB := runRelay(t, b, "b")
	// Both listen, each seen by the other's probe: the test breaks both
	// listening connections (a flaked with only b's awaited).
	awaitListening(t, ra, "a", gotB)
	awaitListening(t, rb, "b", gotA)

	// Break the listening connections of this schema's channel, a's and
	// b's, from the server's side.
	var channel string
	if err := a.Gorm().Raw("SELECT 'ptyhost_events_' || left(md5(current_schema()), 16)").Scan(&channel).Error; err != nil {
		t.Fatal(err)
	}
	var killed []bool
	err := a.Gorm().Raw(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE ? AND pid <> pg_backend_pid()`, "LISTEN %"+channel+"%").Scan(&killed).Error
	if err != nil || len(killed) != 2 {
		t.Fatalf("terminating the listeners: %v, %v; want two", killed, err)
	}
	gotB.await(t, "events_lost")
	ra.Send(core.Event{Type: core.SessionCreated, SessionID: "s1", Node: "a", Time: time.Now()})
	gotB.await(t, "events_lost", "session_created s1 a")
}

// TestRelayNeedsPostgres: SQLite has no notifications.
func TestRelayNeedsPostgres(t *testing.T) {
	s := openReal(t, sqliteDSN(t))
	if _, err := s.NewRelay("a"); !errors.Is(err, gormstore.ErrNodesUnsupported) {
		t.Errorf("NewRelay on SQLite: %v, want ErrNodesUnsupported", err)
	}
}
