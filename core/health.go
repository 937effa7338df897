package core

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Store health checks: each is bounded by storeHealthTimeout, and its
// result is reused for storeHealthTTL, so /healthz stays cheap under any
// polling rate.
const (
	storeHealthTimeout = 2 * time.Second
	storeHealthTTL     = time.Second
)

// storeHealth caches the last store check.
type storeHealth struct {
	mu  sync.Mutex // held through a check: concurrent callers share it
	at  time.Time  // when the last check ended; zero: never
	err error
}

// StoreHealth reports whether the store answers: nil, or what is wrong,
// wrapping ErrStoreUnavailable. A store that implements Pinger is pinged;
// another is asked for an environment that does not exist. The result of a
// check is reused for a second, and a check that takes longer than two
// seconds counts as failed.
func (m *Manager) StoreHealth(ctx context.Context) error {
	h := &m.health
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.at.IsZero() && time.Since(h.at) < storeHealthTTL {
		return h.err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeHealthTimeout)
	defer cancel()
	var err error
	if p, ok := m.store.(Pinger); ok {
		err = p.Ping(cctx)
	} else {
		_, err = m.store.GetEnvironment(cctx, "\x00health-check")
		if errors.Is(err, ErrEnvironmentNotFound) {
			err = nil
		}
	}
	if err != nil {
		err = storeFailed(err)
		m.log.Warn("the database health check failed", "err", err)
	}
	h.at, h.err = time.Now(), err
	return err
}
