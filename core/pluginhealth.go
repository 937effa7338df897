package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// HealthStatus says whether sessions can start in an environment.
type HealthStatus string

// Health statuses.
const (
	HealthHealthy   HealthStatus = "healthy"
	HealthUnhealthy HealthStatus = "unhealthy"
	// HealthUnknown: the environment's plugin does not report health.
	HealthUnknown HealthStatus = "unknown"
)

// EnvironmentHealth is what an environment's plugin says about it: the
// Docker daemon is down, the SSH host is unreachable.
type EnvironmentHealth struct {
	EnvironmentID string       `json:"environment_id"`
	Type          string       `json:"type"`
	Status        HealthStatus `json:"status"`
	// Reason says why an environment is unhealthy.
	Reason string `json:"reason,omitempty"`
	// CheckedAt is when the plugin was asked; answers are cached briefly.
	CheckedAt time.Time `json:"checked_at"`
}

// healthResult is one health check's outcome.
type healthResult struct {
	Status HealthStatus
	err    error // why unhealthy
	at     time.Time
	// timedOut: unhealthy only because the plugin did not answer in time,
	// which does not keep sessions from starting (they have their own
	// timeouts, and a slow host is not a dead one).
	timedOut bool
}

// refuses reports whether sessions are refused on this result: the plugin
// said the environment is unavailable (shared.ErrUnavailable). Other
// failures — a rejected login, a check that timed out — are left to the
// session's own start to report.
func (r healthResult) refuses() bool {
	return r.Status == HealthUnhealthy && !r.timedOut && errors.Is(r.err, shared.ErrUnavailable)
}

// healthReporter is implemented by environments that check health with a
// time and a cache (Plugins' own).
type healthReporter interface {
	checkHealth(ctx context.Context, envType string, config json.RawMessage) healthResult
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
	res  healthResult
}

func newHealthCache(o PluginOptions) *healthCache {
	return &healthCache{ttl: o.HealthCacheTTL, timeout: o.HealthTimeout, entries: map[healthKey]*healthEntry{}}
}

// check returns the health of the environment (envType, config) as g's
// process reports it: unknown without asking when the plugin does not
// announce the health capability, else a cached answer or a new one. The
// check itself runs under its own timeout, not ctx's; ctx bounds only the
// wait for it.
func (c *healthCache) check(ctx context.Context, g *generation, envType string, config json.RawMessage) healthResult {
	hc, ok := g.env.(shared.HealthChecker)
	if !ok || !slices.Contains(g.info.Capabilities, shared.CapHealth) {
		return healthResult{Status: HealthUnknown, at: time.Now()}
	}
	key := healthKey{envType, string(config)}
	now := time.Now()
	c.mu.Lock()
	e := c.entries[key]
	fresh := false
	if e != nil {
		select {
		case <-e.done:
			fresh = now.Sub(e.res.at) < c.ttl
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
		e.res = c.run(ctx, hc, envType, config)
		close(e.done)
		return e.res
	}
	select {
	case <-e.done:
		return e.res
	case <-ctx.Done():
		return healthResult{Status: HealthUnhealthy, err: ctx.Err(), at: time.Now()}
	}
}

// cached returns the answer of a finished check of (envType, config) that
// is still fresh, without asking the plugin.
func (c *healthCache) cached(envType string, config json.RawMessage) (healthResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[healthKey{envType, string(config)}]
	if e == nil {
		return healthResult{}, false
	}
	select {
	case <-e.done:
		return e.res, time.Since(e.res.at) < c.ttl
	default:
		return healthResult{}, false
	}
}

// run asks the plugin.
func (c *healthCache) run(ctx context.Context, hc shared.HealthChecker, envType string, config json.RawMessage) healthResult {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	err := hc.Health(ctx, envType, config)
	res := healthResult{at: time.Now()}
	switch {
	case err == nil:
		res.Status = HealthHealthy
	case errors.Is(err, shared.ErrUnsupported):
		res.Status = HealthUnknown
	case (ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded)) && !errors.Is(err, shared.ErrPluginExited):
		// Our deadline, whichever side noticed it first.
		res.Status, res.err = HealthUnhealthy, fmt.Errorf("%w: the health check did not answer within %v", shared.ErrUnavailable, c.timeout)
		res.timedOut = true
	default:
		res.Status, res.err = HealthUnhealthy, err
	}
	return res
}

// prune drops finished, expired entries; c.mu must be held.
func (c *healthCache) prune(now time.Time) {
	for k, e := range c.entries {
		select {
		case <-e.done:
			if now.Sub(e.res.at) >= c.ttl {
				delete(c.entries, k)
			}
		default:
		}
	}
}

// environmentHealth asks env (through its cache, when it has one) about
// the environment.
func environmentHealth(ctx context.Context, env shared.Environment, envType string, config json.RawMessage) healthResult {
	if r, ok := env.(healthReporter); ok {
		return r.checkHealth(ctx, envType, config)
	}
	hc, ok := env.(shared.HealthChecker)
	if !ok {
		return healthResult{Status: HealthUnknown, at: time.Now()}
	}
	c := healthCache{timeout: DefaultHealthTimeout}
	return c.run(ctx, hc, envType, config)
}
