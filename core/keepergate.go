package core

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

const (
	// keeperBudget and keptBudget bound the time one Reconcile spends
	// waiting on one plugin process's attaches: keeperBudget, plus
	// keptBudget for each session it listed. That is far more than a
	// plugin that answers needs (a few milliseconds an attach), and what
	// a plugin that answers each attach just within its timeout may cost
	// the start. The time is the plugin's busy time: while one call to
	// it or more (attaches, and hang-ups' cleanups) are under way,
	// however many.
	keeperBudget = time.Minute
	keptBudget   = 10 * time.Millisecond
	// hangUpWorkers bounds the kept sessions being hung up at once.
	hangUpWorkers = 16
)

// errKeeperGivenUp says a plugin process was not asked, because an
// earlier attach of the same Reconcile ran out its time.
var errKeeperGivenUp = errors.New("the plugin was not asked: it did not answer an earlier attach in time")

// keeperGate is what one Reconcile has waited for each plugin process
// (shared.Keeper). A plugin that lets one attach run out its time, or
// that has kept the Reconcile waiting for its budget in all, is not asked
// again in that Reconcile: its sessions still to take up are lost, and
// those to hang up are left to it. So a plugin that stalls holds the
// server's start about once, not once per session it lists.
type keeperGate struct {
	budget  time.Duration // 0: keeperBudget
	hangUp  time.Duration // a hang-up's attach and kill; 0: killTimeout
	mu      sync.Mutex
	keepers []*gatedKeeper
}

type gatedKeeper struct {
	k       shared.Keeper
	typ     string // the type of the first session listed, for the log
	listed  int    // sessions it listed
	busy    time.Duration
	active  int       // calls under way (attaches, cleanups)
	since   time.Time // when the calls under way began, while active > 0
	givenUp error     // why it is not asked any more; nil while it is
	skipped int       // attaches not asked for since
}

// get returns the entry of sv's Keeper; nil for a Keeper that cannot be
// compared, which is not gated. g.mu is held.
func (g *keeperGate) get(sv Survivor) *gatedKeeper {
	k := sv.Keeper
	if k == nil || !reflect.TypeOf(k).Comparable() {
		return nil
	}
	for _, e := range g.keepers {
		if sameKeeper(e.k, k) {
			return e
		}
	}
	e := &gatedKeeper{k: k, typ: sv.EnvironmentType}
	g.keepers = append(g.keepers, e)
	return e
}

// listed counts sv among the sessions its Keeper listed.
func (g *keeperGate) listed(sv Survivor) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.get(sv); e != nil {
		e.listed++
	}
}

// budgetOf is e's budget. g.mu is held.
func (g *keeperGate) budgetOf(e *gatedKeeper) time.Duration {
	if g.budget > 0 {
		return g.budget
	}
	return keeperBudget + time.Duration(e.listed)*keptBudget
}

// begin and end count a call to e under way. g.mu is held.
func (e *gatedKeeper) begin(now time.Time) {
	if e.active == 0 {
		e.since = now
	}
	e.active++
}

func (e *gatedKeeper) end(now time.Time) {
	if e.active--; e.active == 0 {
		e.busy += now.Sub(e.since)
	}
}

// account runs f, a call to sv's Keeper bounded by its own timeout (a
// cleanup after an attach that went), whatever the Keeper's state, and
// counts its time as the Keeper's busy time: a plugin whose cleanups are
// slow spends its budget, and is then not asked for more attaches.
func (g *keeperGate) account(sv Survivor, f func()) {
	g.mu.Lock()
	e := g.get(sv)
	if e != nil {
		e.begin(time.Now())
	}
	g.mu.Unlock()
	f()
	if e != nil {
		g.mu.Lock()
		e.end(time.Now())
		g.mu.Unlock()
	}
}

// hangUpTimeout bounds a hang-up's attach and kill.
func (g *keeperGate) hangUpTimeout() time.Duration {
	if g.hangUp > 0 {
		return g.hangUp
	}
	return killTimeout
}

// busyAt is e's busy time until now. g.mu is held.
func (e *gatedKeeper) busyAt(now time.Time) time.Duration {
	if e.active > 0 {
		return e.busy + now.Sub(e.since)
	}
	return e.busy
}

// attach runs f, an attach to sv (and what follows it, for a hang-up),
// with a context that ends after timeout or when the budget of sv's
// Keeper is spent, whichever is first; or fails at once with
// errKeeperGivenUp if that Keeper was given up on.
func (g *keeperGate) attach(ctx context.Context, sv Survivor, timeout time.Duration, f func(context.Context) error) error {
	g.mu.Lock()
	e := g.get(sv)
	if e != nil {
		now := time.Now()
		left := g.budgetOf(e) - e.busyAt(now)
		if e.givenUp == nil && left <= 0 {
			e.givenUp = fmt.Errorf("it kept the start waiting %v in all", g.budgetOf(e))
		}
		if e.givenUp != nil {
			e.skipped++
			g.mu.Unlock()
			return fmt.Errorf("%w (%w)", errKeeperGivenUp, e.givenUp)
		}
		timeout = min(timeout, left)
		e.begin(now)
	}
	g.mu.Unlock()

	actx, cancel := context.WithTimeout(ctx, timeout)
	err := f(actx)
	late := actx.Err() != nil && ctx.Err() == nil
	cancel()
	if e == nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	e.end(now)
	if late && e.givenUp == nil {
		if e.busyAt(now) >= g.budgetOf(e) {
			e.givenUp = fmt.Errorf("it kept the start waiting %v in all", g.budgetOf(e))
		} else {
			e.givenUp = fmt.Errorf("an attach (for a hang-up, its attach and kill) took more than %v", timeout.Round(time.Millisecond))
		}
	}
	return err
}

// givenUp returns the plugins given up on, with why and how many
// attaches each was not asked for since.
func (g *keeperGate) givenUp() []gatedKeeper {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []gatedKeeper
	for _, e := range g.keepers {
		if e.givenUp != nil {
			out = append(out, *e)
		}
	}
	return out
}
