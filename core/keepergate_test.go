package core

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// slowKeeper is a plugin's Keeper that lists sessions and answers each
// Attach with an error after delay, or when the caller gives up if delay
// is 0 (a plugin that never answers). It counts the attaches in flight.
type slowKeeper struct {
	delay    time.Duration
	inFlight atomic.Int64
	maxSeen  atomic.Int64
	attaches atomic.Int64
}

func (k *slowKeeper) Hold(context.Context, time.Duration) (func(), error) { return func() {}, nil }
func (k *slowKeeper) Sessions(context.Context) ([]shared.KeptSession, error) {
	return nil, nil
}
func (k *slowKeeper) Attach(ctx context.Context, id string, off int64) (shared.PTY, int64, error) {
	k.attaches.Add(1)
	n := k.inFlight.Add(1)
	defer k.inFlight.Add(-1)
	for m := k.maxSeen.Load(); n > m && !k.maxSeen.CompareAndSwap(m, n); m = k.maxSeen.Load() {
	}
	var after <-chan time.Time
	if k.delay > 0 {
		after = time.After(k.delay)
	}
	select {
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case <-after:
		return nil, 0, fmt.Errorf("slow keeper: %w", shared.ErrPluginExited)
	}
}

// survivorsOf lists n sessions of k with ids prefix-0...
func survivorsOf(k shared.Keeper, prefix string, n int) []Survivor {
	var list []Survivor
	for i := range n {
		ks := shared.KeptSession{ID: fmt.Sprintf("%s-%d", prefix, i), EnvironmentID: "fake", EnvironmentType: "FAKE"}
		list = append(list, Survivor{KeptSession: ks, Keeper: k})
	}
	return list
}

// A plugin that lists many sessions no record claims gets them hung up a
// few at a time, not all at once (a goroutine, a stream and a socket
// each).
func TestStraySurvivorsHungUpAFewAtATime(t *testing.T) {
	k := &slowKeeper{delay: 20 * time.Millisecond}
	const n = 400
	h := newHarness(t, func(o *Options) {
		o.Plugins = listedSurvivors{Dispatcher: o.Plugins, list: survivorsOf(k, "stray", n)}
		o.HangUpUnknownKept = true // the store knows none of them
	})
	if _, err := h.m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := k.attaches.Load(); got != n {
		t.Errorf("%d hang-up attaches, want %d", got, n)
	}
	if got := k.maxSeen.Load(); got > hangUpWorkers {
		t.Errorf("%d hang-up attaches in flight at once, want at most %d", got, hangUpWorkers)
	}
}

// A plugin that keeps sessions and never answers an Attach holds the
// server's start for one attach's timeout, not one per session: after the
// first, it is not asked again, and its sessions are lost.
func TestStallingKeeperHoldsStartOnce(t *testing.T) {
	k := &slowKeeper{}
	list := survivorsOf(k, "kept", 3)
	var recs []SessionRecord
	for _, sv := range list {
		recs = append(recs, SessionRecord{ID: sv.ID, Status: StatusActive})
	}
	// A stray of the same plugin is not asked for either.
	list = append(list, survivorsOf(k, "stray", 1)...)
	h := newHarness(t, func(o *Options) { o.Plugins = listedSurvivors{Dispatcher: o.Plugins, list: list} })
	h.saveRows(t, recs...)
	start := time.Now()
	lost, err := h.m.Reconcile(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > adoptTimeout+adoptTimeout/2 {
		t.Errorf("Reconcile took %v for 3 sessions of a plugin that does not answer, want about one %v", d.Round(time.Second), adoptTimeout)
	}
	if got := k.attaches.Load(); got != 1 {
		t.Errorf("the plugin was asked %d times, want once", got)
	}
	if lost != len(recs) {
		t.Errorf("Reconcile lost %d sessions, want %d", lost, len(recs))
	}
	for _, r := range recs {
		rec, err := h.m.GetSession(t.Context(), r.ID)
		if err != nil || rec.Status != StatusError || rec.StatusReason != ReasonServerLost {
			t.Errorf("session %s: %s %q, %v; want %s %q", r.ID, rec.Status, rec.StatusReason, err, StatusError, ReasonServerLost)
		}
	}
}

// The gate gives up on a Keeper once one attach ran out its time or all
// of its attaches took the budget, and then fails at once; other Keepers
// are asked as before.
func TestKeeperGate(t *testing.T) {
	ctx := t.Context()
	a, b := &slowKeeper{}, &slowKeeper{}
	sa, sb := survivorsOf(a, "a", 1)[0], survivorsOf(b, "b", 1)[0]
	g := &keeperGate{budget: time.Second}
	quick := func(d time.Duration) func(context.Context) error {
		return func(ctx context.Context) error {
			select {
			case <-time.After(d):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	// 300 ms of a's 1 s budget, well within each attach's 3 s.
	if err := g.attach(ctx, sa, 3*time.Second, quick(300*time.Millisecond)); err != nil {
		t.Fatalf("first attach: %v", err)
	}
	// The next has what is left of the budget (about 700 ms), not 3 s.
	start := time.Now()
	if err := g.attach(ctx, sa, 3*time.Second, quick(time.Minute)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("attach past the budget: %v, want the deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("attach past the budget took %v, want what was left of the budget (about 700ms), not its own 3s", d)
	}
	called := false
	err := g.attach(ctx, sa, time.Second, func(context.Context) error { called = true; return nil })
	if !errors.Is(err, errKeeperGivenUp) || called {
		t.Fatalf("attach after the budget: %v (called %v), want errKeeperGivenUp at once", err, called)
	}
	// b is its own: a late attach gives up on it, not before.
	if err := g.attach(ctx, sb, 50*time.Millisecond, quick(time.Second)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("late attach of b: %v", err)
	}
	if err := g.attach(ctx, sb, time.Second, quick(0)); !errors.Is(err, errKeeperGivenUp) {
		t.Fatalf("attach of b after a late one: %v, want errKeeperGivenUp", err)
	}
	given := g.givenUp()
	if len(given) != 2 || given[0].skipped != 1 || given[1].skipped != 1 {
		t.Errorf("given up: %+v, want a and b, one attach skipped each", given)
	}
	// A caller that gives up does not give up on the plugin.
	c := &slowKeeper{}
	sc := survivorsOf(c, "c", 1)[0]
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_ = g.attach(cctx, sc, time.Second, quick(time.Second))
	if err := g.attach(ctx, sc, time.Second, quick(0)); err != nil {
		t.Errorf("attach after the caller's own cancel: %v", err)
	}
}

// A Keeper that cannot be compared is not gated, and does not panic the
// gate.
func TestKeeperGateUncomparable(t *testing.T) {
	type uncomparable struct {
		shared.Keeper
		_ []int
	}
	sv := Survivor{Keeper: uncomparable{Keeper: &slowKeeper{}}}
	g := &keeperGate{budget: time.Millisecond}
	for range 2 {
		if err := g.attach(t.Context(), sv, time.Second, func(context.Context) error { time.Sleep(2 * time.Millisecond); return nil }); err != nil {
			t.Fatal(err)
		}
	}
}

// A plugin that answers every hang-up attach in 100 ms, 16 at a time, for
// about 4.5 s in all, is not given up on: its budget is the time the
// start waits on it, not the sum of its attaches that ran at once.
func TestGateCountsBusyTimeNotTheSum(t *testing.T) {
	k := &slowKeeper{delay: 100 * time.Millisecond}
	const n = 700
	h := newHarness(t, func(o *Options) {
		o.Plugins = listedSurvivors{Dispatcher: o.Plugins, list: survivorsOf(k, "stray", n)}
		o.HangUpUnknownKept = true // the store knows none of them
	})
	start := time.Now()
	if _, err := h.m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("Reconcile took %v", time.Since(start).Round(time.Millisecond))
	if got := k.attaches.Load(); got != n {
		t.Errorf("%d of %d strays asked to hang up; a plugin that answers each in 100ms was given up on after %v of wall clock",
			got, n, time.Since(start).Round(time.Millisecond))
	}
}

// wrapKeeper is a comparable Keeper type (a struct of an interface)
// whose value may hold an uncomparable Keeper: reflect says Comparable,
// == panics.
type wrapKeeper struct{ shared.Keeper }

type funcKeeper struct {
	shared.Keeper
	hook func()
}

// A Keeper of a comparable type may hold a value that is not: the gate
// does not panic on it.
func TestGateKeeperOfComparableTypeButUncomparableValue(t *testing.T) {
	inner := funcKeeper{Keeper: &slowKeeper{}, hook: func() {}}
	sa := Survivor{Keeper: wrapKeeper{inner}}
	sb := Survivor{Keeper: wrapKeeper{inner}}
	g := &keeperGate{}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("the gate panicked: %v", r)
		}
	}()
	ok := func(context.Context) error { return nil }
	_ = g.attach(t.Context(), sa, time.Second, ok)
	_ = g.attach(t.Context(), sb, time.Second, ok)
}

// stallKillKeeper answers every Attach at once, with a PTY whose Kill
// does not answer until the caller gives up: the gate sees quick
// attaches, and the kills are not gated.
type stallKillKeeper struct{ slowKeeper }

type stallKillPTY struct{ shared.PTY }

func (stallKillPTY) Kill(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
func (stallKillPTY) Close() error                   { return nil }

func (k *stallKillKeeper) Attach(ctx context.Context, id string, off int64) (shared.PTY, int64, error) {
	k.attaches.Add(1)
	return stallKillPTY{}, off, nil
}

// A plugin that answers its strays' attaches at once and stalls their
// kills holds the start for one kill timeout, not one per 16 strays: the
// whole hang-up is under the gate.
func TestStalledKillsHoldStartOnce(t *testing.T) {
	k := &stallKillKeeper{}
	const n = 48
	h := newHarness(t, func(o *Options) {
		o.Plugins = listedSurvivors{Dispatcher: o.Plugins, list: survivorsOf(k, "stray", n)}
		o.HangUpUnknownKept = true // the store knows none of them
	})
	start := time.Now()
	if _, err := h.m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > killTimeout+killTimeout/2 {
		t.Errorf("Reconcile took %v for %d strays of a plugin that stalls kills, want about one %v", d.Round(time.Second), n, killTimeout)
	}
}

// slowCloseKeeper answers every Attach and Kill at once; the cleanup
// (Close) of its n-th session attached takes closeDelays[n], or the last
// of them.
type slowCloseKeeper struct {
	slowKeeper
	closeDelays []time.Duration
}

type slowClosePTY struct {
	shared.PTY
	delay time.Duration
}

func (slowClosePTY) Kill(context.Context) error { return nil }
func (p slowClosePTY) Close() error             { time.Sleep(p.delay); return nil }

func (k *slowCloseKeeper) Attach(ctx context.Context, id string, off int64) (shared.PTY, int64, error) {
	n := int(k.attaches.Add(1)) - 1
	return slowClosePTY{delay: k.closeDelays[min(n, len(k.closeDelays)-1)]}, off, nil
}

// A hang-up's cleanup, which a slow container removal may need, is not
// held to the attach's and kill's timeout: a plugin whose cleanups take
// longer than that is not given up on, until they have used its budget.
func TestSlowCleanupSpendsTheBudgetOnly(t *testing.T) {
	k := &slowCloseKeeper{closeDelays: []time.Duration{400 * time.Millisecond, 400 * time.Millisecond, 2 * time.Second}}
	g := &keeperGate{hangUp: 300 * time.Millisecond, budget: 1500 * time.Millisecond}
	list := survivorsOf(k, "stray", 4)
	for i, sv := range list[:2] {
		if err := hangUpSurvivor(t.Context(), sv, g); err != nil {
			t.Fatalf("hang-up %d: %v", i, err)
		}
	}
	if given := g.givenUp(); len(given) != 0 {
		t.Fatalf("given up after two hang-ups whose cleanup took longer than the attach's timeout: %+v", given)
	}
	// About 800 ms of 1.5 s spent: the third goes, and its cleanup (2 s)
	// spends the rest; the fourth is not asked.
	if err := hangUpSurvivor(t.Context(), list[2], g); err != nil {
		t.Fatalf("hang-up 3: %v", err)
	}
	if err := hangUpSurvivor(t.Context(), list[3], g); !errors.Is(err, errKeeperGivenUp) {
		t.Fatalf("hang-up past the budget: %v, want errKeeperGivenUp", err)
	}
	if got := k.attaches.Load(); got != 3 {
		t.Errorf("%d attaches, want 3", got)
	}
}
