package core

import (
	"context"
	"errors"
	"fmt"
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

// writesUnhealthyAfter is how long the session writes may keep failing,
// while the store answers its check, before the store counts as
// unavailable: a database that reads but takes no writes (a full disk, a
// locked table) loses the sessions' status as surely as one down. It
// spans two of the writer's retries at their longest (writerRetryMax).
var writesUnhealthyAfter = 2*writerRetryMax + 5*time.Second

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
// seconds counts as failed. A store that answers, but on which the
// sessions' writes have kept failing for writesUnhealthyAfter, is
// unavailable too.
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
	if err == nil {
		if d, werr := m.writer.writeHealth(); d >= writesUnhealthyAfter {
			err = fmt.Errorf("session writes have failed for %v: %w", d.Round(time.Second), werr)
		}
	}
	if err != nil {
		err = storeFailed(err)
		if h.err == nil {
			// Once an outage, not once a check: /healthz may be polled
			// every second.
			m.log.Warn("the database health check failed", "err", err)
		}
	} else if h.err != nil {
		m.log.Info("the database health check passes again")
	}
	h.at, h.err = time.Now(), err
	return err
}
