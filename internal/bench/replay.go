package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// The replay and store-write runs. Both run on a second server with
// --scrollback replayRing, so that the main server keeps the default.

const (
	// replayRing is the second server's --scrollback, and replayRingBytes
	// the same in bytes.
	replayRing      = "1MiB"
	replayRingBytes = 1 << 20
	// replayFill is what the replay session writes: twice the ring, so
	// that the ring is full whatever it keeps back at its safe point.
	replayFill = 2 * replayRingBytes
	// replayJoins is how many clients join, one after another; the median
	// is reported.
	replayJoins = 7

	// storeSessions sessions write a line every storeTickMs for
	// storeWindow while the bench counts the store writes.
	storeSessions = 20
	storeTickMs   = 10
	storeWarmup   = 2 * time.Second
	storeWindow   = 10 * time.Second
)

// replayResult is the joins' time to receive the full ring's replay.
type replayResult struct {
	Ring  int64           `json:"ring_bytes"`
	Bytes int64           `json:"replayed_bytes"` // of the last join
	Joins []time.Duration `json:"join_ns"`
	P50   time.Duration   `json:"p50_ns"`
	Max   time.Duration   `json:"max_ns"`
}

// replay creates a session in at that writes replayFill bytes and stays,
// reads all of it with one client (so that the core's ring holds the end
// of it), and then times replayJoins new clients, one after another, from
// the WebSocket upgrade request to the last byte of the replay: a client
// knows it has it all when the hello's offset plus the bytes received
// reach replayFill.
func (s *server) replay(ctx context.Context, at place) (*replayResult, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	id, err := s.createSession(ctx, at, at.argv("fill", strconv.Itoa(replayFill)))
	if err != nil {
		return nil, err
	}
	defer s.deleteSession(id)
	first, err := s.attach(ctx, id)
	if err != nil {
		return nil, err
	}
	_, err = first.readTo(ctx, replayFill)
	first.close()
	if err != nil {
		return nil, fmt.Errorf("reading the session's output: %w", err)
	}
	r := &replayResult{Ring: replayRingBytes}
	for i := range replayJoins {
		t0 := time.Now()
		c, err := s.attach(ctx, id)
		if err != nil {
			return nil, err
		}
		n, err := c.readTo(ctx, replayFill)
		dt := time.Since(t0)
		c.close()
		if err != nil {
			return nil, fmt.Errorf("join %d: %w", i, err)
		}
		if n < replayRingBytes*9/10 {
			return nil, fmt.Errorf("join %d: replayed %d bytes, want about %d (the ring)", i, n, replayRingBytes)
		}
		r.Bytes = n
		r.Joins = append(r.Joins, dt)
	}
	s2 := slices.Clone(r.Joins)
	slices.Sort(s2)
	r.P50, r.Max = median(s2), s2[len(s2)-1]
	return r, nil
}

// readTo reads output until the client is at absolute offset end and
// returns the output bytes it read.
func (c *wsClient) readTo(ctx context.Context, end int64) (int64, error) {
	start := c.conn.Hello().Offset
	var n int64
	for start+n < end {
		p, err := c.next(ctx)
		if errors.Is(err, io.EOF) {
			return n, fmt.Errorf("the session exited at offset %d, before %d: %s", start+n, end, c.exitString())
		}
		if err != nil {
			return n, err
		}
		n += int64(len(p))
		if c.res.Resets > 0 {
			return n, fmt.Errorf("the client was reset")
		}
	}
	if start+n != end {
		return n, fmt.Errorf("read to offset %d, want %d", start+n, end)
	}
	return n, nil
}

// storeResult is the store writes counted under continuous output.
type storeResult struct {
	Sessions   int     `json:"sessions"`
	Seconds    float64 `json:"seconds"`
	Writes     float64 `json:"writes"`
	PerSession float64 `json:"writes_per_session_per_s"`
	// Missing says why it was not counted: the server has no counter.
	Missing string `json:"missing,omitempty"`
}

// storeWrites starts storeSessions sessions in at that each write a line
// every storeTickMs, lets them run storeWarmup, and counts the store
// writes (metricStoreWrites) over storeWindow.
func (s *server) storeWrites(ctx context.Context, at place) (*storeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	r := &storeResult{Sessions: storeSessions}
	if m, err := s.metrics(ctx, metricStoreWrites); err != nil {
		return nil, err
	} else if _, ok := m[metricStoreWrites]; !ok {
		r.Missing = "GET /metrics has no " + metricStoreWrites
		return r, nil
	}
	ids := make([]string, storeSessions)
	defer func() { _ = s.deleteAll(ids) }()
	err := bounded(storeSessions, func(i int) error {
		id, err := s.createSession(ctx, at, at.argv("trickle", strconv.Itoa(storeTickMs)))
		ids[i] = id
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := sleepCtx(ctx, storeWarmup); err != nil {
		return nil, err
	}
	m0, err := s.metrics(ctx, metricStoreWrites)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := sleepCtx(ctx, storeWindow); err != nil {
		return nil, err
	}
	m1, err := s.metrics(ctx, metricStoreWrites)
	if err != nil {
		return nil, err
	}
	r.Seconds = time.Since(t0).Seconds()
	r.Writes = m1[metricStoreWrites] - m0[metricStoreWrites]
	r.PerSession = r.Writes / float64(storeSessions) / r.Seconds
	return r, nil
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
