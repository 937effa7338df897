package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// The idle-sessions run: N HOST sessions, each an interactive shell
// waiting at its prompt, created through the REST API, and what they cost
// the core and the HOST plugin.

const (
	// scaleConcurrency bounds the creates and deletes in flight at once.
	scaleConcurrency = 16
	// idleSettle bounds the wait for the plugin's and the core's figures to
	// settle after the creates; they are read every idlePoll until two
	// readings in a row agree on the plugin's fds and threads.
	idleSettle = 15 * time.Second
	idlePoll   = 500 * time.Millisecond
	// idleTimeout bounds the whole run.
	idleTimeout = 5 * time.Minute
)

// idleArgv is what an idle session runs: /bin/sh with no arguments on a
// terminal is interactive, prints its prompt and waits for a line — what
// a user's idle shell does, at dash's small footprint, so that 1,000 of
// them fit on a small machine.
var idleArgv = []string{"/bin/sh"}

// idleResult is what the idle-sessions run measured.
type idleResult struct {
	N           int           `json:"n"`
	Command     []string      `json:"command"`
	CreateTotal time.Duration `json:"create_total_ns"` // all N creates, concurrency scaleConcurrency
	DeleteTotal time.Duration `json:"delete_total_ns"`
	// Core and Plugin before the creates, after them (settled), and after
	// the deletes (settled).
	CoreBefore   procMem `json:"core_before"`
	CoreAfter    procMem `json:"core_after"`
	CoreDeleted  procMem `json:"core_deleted"`
	PluginBefore procMem `json:"plugin_before"`
	PluginAfter  procMem `json:"plugin_after"`
	PluginGone   procMem `json:"plugin_deleted"`
	// HeapBefore and HeapAfter are the core's go_memstats_heap_inuse_bytes;
	// nil when /metrics does not have it.
	HeapBefore *float64 `json:"core_heap_inuse_before,omitempty"`
	HeapAfter  *float64 `json:"core_heap_inuse_after,omitempty"`

	// Per idle session, from the differences.
	CoreRSSPer    float64  `json:"core_rss_bytes_per_session"`
	PluginRSSPer  float64  `json:"plugin_rss_bytes_per_session"`
	PluginFDsPer  float64  `json:"plugin_fds_per_session"`
	CoreHeapPer   *float64 `json:"core_heap_bytes_per_session,omitempty"`
	PluginThreads int      `json:"plugin_threads"` // in all, with the N sessions
	Failed        string   `json:"failed,omitempty"`
}

// idleSessions runs the idle-sessions measurement on s, whose processes
// are procs.
func (s *server) idleSessions(ctx context.Context, at place, n int, procs procSet, log func(string, ...any)) (*idleResult, error) {
	ctx, cancel := context.WithTimeout(ctx, idleTimeout)
	defer cancel()
	r := &idleResult{N: n, Command: idleArgv}
	var err error
	if r.CoreBefore, r.PluginBefore, err = settled(ctx, procs); err != nil {
		return nil, err
	}
	r.HeapBefore = s.heapInuse(ctx)

	ids := make([]string, n)
	t0 := time.Now()
	err = bounded(n, func(i int) error {
		id, err := s.createSession(ctx, at, idleArgv)
		ids[i] = id
		return err
	})
	r.CreateTotal = time.Since(t0)
	// Whatever happened, delete what was created.
	defer func() {
		if r.DeleteTotal == 0 {
			_ = s.deleteAll(ids)
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("creating %d idle sessions: %w", n, err)
	}
	log("idle sessions: %d created in %v; letting them settle", n, r.CreateTotal.Round(time.Millisecond))
	if r.CoreAfter, r.PluginAfter, err = settled(ctx, procs); err != nil {
		return nil, err
	}
	r.HeapAfter = s.heapInuse(ctx)

	t1 := time.Now()
	err = s.deleteAll(ids)
	r.DeleteTotal = time.Since(t1)
	if err != nil {
		return nil, fmt.Errorf("deleting the idle sessions: %w", err)
	}
	if r.CoreDeleted, r.PluginGone, err = settled(ctx, procs); err != nil {
		return nil, err
	}
	per := func(a, b int64) float64 { return float64(b-a) / float64(n) }
	r.CoreRSSPer = per(r.CoreBefore.RSS, r.CoreAfter.RSS)
	r.PluginRSSPer = per(r.PluginBefore.RSS, r.PluginAfter.RSS)
	r.PluginFDsPer = per(int64(r.PluginBefore.FDs), int64(r.PluginAfter.FDs))
	r.PluginThreads = r.PluginAfter.Threads
	if r.HeapBefore != nil && r.HeapAfter != nil {
		h := (*r.HeapAfter - *r.HeapBefore) / float64(n)
		r.CoreHeapPer = &h
	}
	return r, nil
}

// deleteAll deletes the sessions of ids ("" is skipped), scaleConcurrency
// at a time.
func (s *server) deleteAll(ids []string) error {
	return bounded(len(ids), func(i int) error {
		if ids[i] == "" {
			return nil
		}
		return s.deleteSession(ids[i])
	})
}

// bounded runs f(0..n-1), scaleConcurrency at a time, and returns the
// first error; after one, the calls not yet started are skipped.
func bounded(n int, f func(i int) error) error {
	var next atomic.Int64
	var failed atomic.Bool
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(n, scaleConcurrency) {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return first
}

// settled reads the core's and the plugin's footprint every idlePoll
// until the plugin's fds and threads and the core's threads read the same
// twice in a row (the sessions' start or end has been handled), or
// idleSettle has passed, and returns the last reading.
func settled(ctx context.Context, procs procSet) (core, plugin procMem, err error) {
	deadline := time.Now().Add(idleSettle)
	var prevP procMem
	var prevC procMem
	for i := 0; ; i++ {
		if core, err = readProcMem(procs.core); err != nil {
			return core, plugin, fmt.Errorf("reading the core's footprint: %w", err)
		}
		if plugin, err = readProcMem(procs.plugin); err != nil {
			return core, plugin, fmt.Errorf("reading the plugin's footprint: %w", err)
		}
		if i > 0 && plugin.FDs == prevP.FDs && plugin.Threads == prevP.Threads && core.Threads == prevC.Threads {
			return core, plugin, nil
		}
		if time.Now().After(deadline) {
			return core, plugin, nil
		}
		prevP, prevC = plugin, core
		select {
		case <-ctx.Done():
			return core, plugin, ctx.Err()
		case <-time.After(idlePoll):
		}
	}
}

// heapInuse returns the core's Go heap in use from /metrics; nil when the
// server does not export it.
func (s *server) heapInuse(ctx context.Context) *float64 {
	m, err := s.metrics(ctx, metricHeapInuse)
	if err != nil {
		return nil
	}
	v, ok := m[metricHeapInuse]
	if !ok {
		return nil
	}
	return &v
}
