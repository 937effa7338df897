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
	// keeperBudget bounds the time one Reconcile spends in one plugin
	// process's attaches, all together: far more than a plugin that
	// answers needs (a few milliseconds each), and what a plugin that
	// answers each one just within its timeout may cost the start.
	keeperBudget = time.Minute
	// hangUpWorkers bounds the kept sessions being hung up at once.
	hangUpWorkers = 16
)

// errKeeperGivenUp says a plugin process was not asked, because an
// earlier attach of the same Reconcile ran out its time.
var errKeeperGivenUp = errors.New("the plugin was not asked: it did not answer an earlier attach in time")

// keeperGate is what one Reconcile has waited for each plugin process
// (shared.Keeper). A plugin that lets one attach run out its time, or
// whose attaches have taken keeperBudget in all, is not asked again in
// that Reconcile: its sessions still to take up are lost, and those to
// hang up are left to it. So a plugin that stalls holds the server's
// start once, not once per session it lists.
type keeperGate struct {
	budget  time.Duration // 0: keeperBudget
	mu      sync.Mutex
	keepers []*gatedKeeper
}

type gatedKeeper struct {
	k       shared.Keeper
	typ     string // the type of the first session asked for, for the log
	spent   time.Duration
	givenUp error // why it is not asked any more; nil while it is
	skipped int   // hang-ups not asked for since
}

// get returns the entry of sv's Keeper; nil for a Keeper that cannot be
// compared, which is not gated.
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

// attach runs f, an attach to sv, with a context that ends after timeout
// or when the budget of sv's Keeper is spent, whichever is first; or
// fails at once with errKeeperGivenUp if that Keeper was given up on.
func (g *keeperGate) attach(ctx context.Context, sv Survivor, timeout time.Duration, f func(context.Context) error) error {
	g.mu.Lock()
	e := g.get(sv)
	if e != nil {
		if e.givenUp != nil {
			e.skipped++
			g.mu.Unlock()
			return fmt.Errorf("%w (%w)", errKeeperGivenUp, e.givenUp)
		}
		timeout = min(timeout, g.budgetOrDefault()-e.spent)
	}
	g.mu.Unlock()

	actx, cancel := context.WithTimeout(ctx, timeout)
	start := time.Now()
	err := f(actx)
	late := actx.Err() != nil && ctx.Err() == nil
	cancel()
	if e == nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	e.spent += time.Since(start)
	switch {
	case e.givenUp != nil:
	case e.spent >= g.budgetOrDefault():
		e.givenUp = fmt.Errorf("its attaches took %v in all", g.budgetOrDefault())
	case late:
		e.givenUp = fmt.Errorf("an attach took more than %v", timeout.Round(time.Millisecond))
	}
	return err
}

func (g *keeperGate) budgetOrDefault() time.Duration {
	if g.budget > 0 {
		return g.budget
	}
	return keeperBudget
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
