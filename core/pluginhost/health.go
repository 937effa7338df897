package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/shared"
)

// refuses reports whether sessions are refused on r: the plugin said the
// environment is unavailable (shared.ErrUnavailable). Other failures — a
// rejected login, a check that timed out — are left to the session's own
// start to report.
func refuses(r core.HealthReport) bool {
	return r.Status == core.HealthUnhealthy && !r.TimedOut && errors.Is(r.Err, shared.ErrUnavailable)
}

// healthCache keeps a plugin process's health answers by environment type
// and config for a while, and runs one check at a time per key: callers
// that come while a check runs wait for its answer.
type healthCache struct {
	ttl     time.Duration
	timeout time.Duration

	mu sync.Mutex
	// mu protects the following.
	entries map[healthKey]*healthEntry
}

type healthKey struct{ envType, config string }

type healthEntry struct {
	done chan struct{} // closed when res is set
	res  core.HealthReport
}

func newHealthCache(o Options) *healthCache {
	return &healthCache{ttl: o.HealthCacheTTL, timeout: o.HealthTimeout, entries: map[healthKey]*healthEntry{}}
}

// check returns the health of the environment (envType, config) as g's
// process reports it: unknown without asking when the plugin does not
// announce the health capability, else a cached answer or a new one. The
// check itself runs under its own timeout, not ctx's; ctx bounds only the
// wait for it.
func (c *healthCache) check(ctx context.Context, g *generation, envType string, config json.RawMessage) core.HealthReport {
	hc, ok := g.env.(shared.HealthChecker)
	if !ok || !slices.Contains(g.info.Capabilities, shared.CapHealth) {
		return core.HealthReport{Status: core.HealthUnknown, CheckedAt: time.Now()}
	}
	key := healthKey{envType, string(config)}
	now := time.Now()
	c.mu.Lock()
	e := c.entries[key]
	fresh := false
	if e != nil {
		select {
		case <-e.done:
			fresh = now.Sub(e.res.CheckedAt) < c.ttl
		default:
			fresh = true // running
		}
	}
	if !fresh {
		c.prune(now)
		e = &healthEntry{done: make(chan struct{})}
		c.entries[key] = e
	}
	c.mu.Unlock()

	if !fresh {
		e.res = core.CheckHealth(ctx, hc, envType, config, c.timeout)
		close(e.done)
		return e.res
	}
	select {
	case <-e.done:
		return e.res
	case <-ctx.Done():
		return core.HealthReport{Status: core.HealthUnhealthy, Err: ctx.Err(), CheckedAt: time.Now()}
	}
}

// cached returns the answer of a finished check of (envType, config) that
// is still fresh, without asking the plugin.
func (c *healthCache) cached(envType string, config json.RawMessage) (core.HealthReport, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[healthKey{envType, string(config)}]
	if e == nil {
		return core.HealthReport{}, false
	}
	select {
	case <-e.done:
		return e.res, time.Since(e.res.CheckedAt) < c.ttl
	default:
		return core.HealthReport{}, false
	}
}

// prune drops finished, expired entries; c.mu must be held.
func (c *healthCache) prune(now time.Time) {
	for k, e := range c.entries {
		select {
		case <-e.done:
			if now.Sub(e.res.CheckedAt) >= c.ttl {
				delete(c.entries, k)
			}
		default:
		}
	}
}
