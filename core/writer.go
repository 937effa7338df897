package core

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// writer moves session status to the store off every session's hot path.
// A new session's row is written at once (saveNow), before the session
// starts; everything after — status changes, counters, last-active times —
// is enqueued, and one goroutine writes. Writes to one session are merged
// while they wait, so a burst of changes (connections coming and going,
// resizes, activity) becomes one row update. A failed write is logged, kept
// (merged under anything newer) and retried with backoff: a store outage
// delays the record but never fails a session.
type writer struct {
	store   SessionStore
	log     *slog.Logger
	metrics *metrics

	mu       sync.Mutex // protects the following
	pending  map[string]*pendingWrite
	inflight map[string]*pendingWrite // the batch being written now, less what failed or a save replaced
	// rows are the ids a write is on now, a batch's or a save's, each
	// with a channel closed when that write ends: writes to one row are
	// made one at a time, in the order they were enqueued, while a save
	// of a new row need not wait for a batch held up by another row (one
	// locked by another transaction, say).
	rows map[string]chan struct{}
	// failing is when the batches' writes began to fail, zero while the
	// last batch landed whole, and failErr the last failure (writeHealth).
	failing time.Time
	failErr error
	retried int // writes that failed since failing

	// batching, a semaphore of one, serialises the batches (the run's and
	// flushes).
	batching chan struct{}

	kick chan struct{}
	done chan struct{}
}

// pendingWrite is what waits to be written for one session: an update of
// its row. A whole row is written at once, by saveNow.
type pendingWrite struct {
	upd SessionUpdate
	// after are called once the write holding them has landed (or has
	// nothing left to land on: the row was deleted or replaced whole).
	after []func()
	// landed is set (under the writer's mu) once a batch has written it:
	// the batch, not a save that replaces the row after it, calls after.
	landed bool
	// saves counts (under the writer's mu) the saves of its row begun
	// while it waited: a reader that captured it skips it if one began
	// since, as the row it reads may be the saved one (capture).
	saves int
}

// takeOver merges newer, enqueued while p was being written, into p,
// which failed and goes back to pending: newer's update on top of p's.
func (p *pendingWrite) takeOver(newer *pendingWrite) *pendingWrite {
	p.upd.Merge(newer.upd)
	p.after = append(p.after, newer.after...)
	return p
}

// done calls p's callbacks.
func (p *pendingWrite) done() {
	for _, f := range p.after {
		f()
	}
}

const (
	writerRetryMin = 100 * time.Millisecond
	writerRetryMax = 10 * time.Second
	// writerTimeout bounds one write, so that a database that hangs
	// delays the others only this long.
	writerTimeout = 10 * time.Second
)

func newWriter(store SessionStore, log *slog.Logger, metrics *metrics) *writer {
	w := &writer{
		store:    store,
		log:      log,
		metrics:  metrics,
		pending:  make(map[string]*pendingWrite),
		rows:     make(map[string]chan struct{}),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		batching: make(chan struct{}, 1),
	}
	return w
}

// update enqueues a change to one row.
func (w *writer) update(id string, u SessionUpdate) {
	w.updateThen(id, u, nil)
}

// updateThen is update, then calls then (when not nil), on the goroutine
// of the write that lands it (the writer's, a flush's or a save's caller),
// once the change is in the store: written, merged into a write
// that landed, or made moot by the row's deletion or replacement. While
// the store refuses the write, then waits with it.
func (w *writer) updateThen(id string, u SessionUpdate, then func()) {
	w.mu.Lock()
	p := w.pending[id]
	if p == nil {
		p = &pendingWrite{}
		w.pending[id] = p
	}
	p.upd.Merge(u)
	if then != nil {
		p.after = append(p.after, then)
	}
	w.mu.Unlock()
	w.poke()
}

func (w *writer) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// overlay applies what is still to be written for rec's id to rec, so
// readers see the latest state before it reaches the store.
func (w *writer) overlay(rec *SessionRecord) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range []map[string]*pendingWrite{w.inflight, w.pending} {
		if p := m[rec.ID]; p != nil {
			p.upd.ApplyTo(rec)
		}
	}
}

// capture returns what is still to be written for id now, to be applied
// (before overlay) to a row read from the store after it: a write that
// lands between that read and overlay is in neither, and the row would
// come back without it.
//
// A save of the row begun since (a create of the id, replacing the row of
// an ended session) makes what was captured moot: the row read may be the
// saved one, which the captured updates, of the session before, must not
// touch. They are left out then, even when the save failed (the reader
// sees the row without them, as before they were enqueued).
func (w *writer) capture(id string) func(rec *SessionRecord) {
	type held struct {
		orig  *pendingWrite
		saves int
		upd   SessionUpdate
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var hs []held
	for _, m := range []map[string]*pendingWrite{w.inflight, w.pending} {
		if p := m[id]; p != nil {
			hs = append(hs, held{orig: p, saves: p.saves, upd: p.upd})
		}
	}
	return func(rec *SessionRecord) {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, h := range hs {
			if h.orig.saves == h.saves {
				h.upd.ApplyTo(rec)
			}
		}
	}
}

// run writes until ctx ends, then returns. Call flush after it to write
// what is left.
func (w *writer) run(ctx context.Context) {
	defer close(w.done)
	backoff := writerRetryMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		for w.writeBatch(ctx) != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, writerRetryMax)
		}
		backoff = writerRetryMin
	}
}

// flush writes everything pending now, once; it returns the first error.
func (w *writer) flush(ctx context.Context) error {
	return w.writeBatch(ctx)
}

// saveNow writes rec, a whole row, before it returns, in order with the
// other writes to its row. What was still to be written for its id is
// dropped once it is written (a batch skips it): the row replaces it.
func (w *writer) saveNow(ctx context.Context, rec SessionRecord) error {
	replaced, err := w.saveLocked(ctx, rec)
	for _, p := range replaced {
		p.done()
	}
	return err
}

// saveLocked is saveNow's work, holding rec's row; it returns the writes
// the row replaced.
func (w *writer) saveLocked(ctx context.Context, rec SessionRecord) ([]*pendingWrite, error) {
	if err := w.lockRow(ctx, rec.ID); err != nil {
		return nil, err
	}
	defer w.unlockRow(rec.ID)
	w.mu.Lock()
	for _, m := range []map[string]*pendingWrite{w.inflight, w.pending} {
		if p := m[rec.ID]; p != nil {
			p.saves++
		}
	}
	w.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, writerTimeout)
	defer cancel()
	timer := prometheus.NewTimer(w.metrics.storeLatency)
	err := w.store.SaveSession(wctx, rec)
	timer.ObserveDuration()
	if err != nil {
		w.metrics.storeErrors.Inc()
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var replaced []*pendingWrite
	for _, m := range []map[string]*pendingWrite{w.inflight, w.pending} {
		if p := m[rec.ID]; p != nil {
			delete(m, rec.ID)
			if !p.landed {
				replaced = append(replaced, p)
			}
		}
	}
	return replaced, nil
}

// lockBatches waits for the batch before to end.
func (w *writer) lockBatches(ctx context.Context) error {
	select {
	case w.batching <- struct{}{}:
		return nil
	default:
	}
	select {
	case w.batching <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *writer) unlockBatches() { <-w.batching }

// lockRow waits for the write on id's row, if there is one, to end, and
// takes the row.
func (w *writer) lockRow(ctx context.Context, id string) error {
	for {
		w.mu.Lock()
		busy := w.rows[id]
		if busy == nil {
			w.rows[id] = make(chan struct{})
			w.mu.Unlock()
			return nil
		}
		w.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (w *writer) unlockRow(id string) {
	w.mu.Lock()
	close(w.rows[id])
	delete(w.rows, id)
	w.mu.Unlock()
}

// writeBatch takes every pending write and performs it. Failed writes go
// back to pending, under anything enqueued meanwhile. The callbacks of
// those that landed are called after, when the next batch may begin.
func (w *writer) writeBatch(ctx context.Context) error {
	landed, err := w.writeLocked(ctx)
	for _, p := range landed {
		p.done()
	}
	return err
}

// writeLocked is writeBatch's work, under the batch semaphore; it returns
// the writes that landed.
func (w *writer) writeLocked(ctx context.Context) (landed []*pendingWrite, err error) {
	if err := w.lockBatches(ctx); err != nil {
		return nil, err
	}
	defer w.unlockBatches()

	w.mu.Lock()
	ids := make([]string, 0, len(w.pending))
	for id := range w.pending {
		ids = append(ids, id)
	}
	w.inflight = w.pending
	w.pending = make(map[string]*pendingWrite, len(ids))
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.inflight = nil
		w.mu.Unlock()
	}()

	var firstErr error
	failed, firstFailed, failErr := 0, "", error(nil)
	defer func() {
		// The health of the writes is judged a batch at a time: one row
		// that keeps failing in a batch whose others land keeps it failing.
		switch {
		case failed > 0:
			// One line a batch, not one a session: an outage under a
			// thousand sessions is one line every retry.
			w.log.Warn("store writes failed; will retry", "sessions", failed, "session_id", firstFailed, "err", failErr)
			w.failed(failErr, failed)
		case len(landed) > 0:
			w.landed()
		}
	}()
	for _, id := range ids {
		p, err := w.writeRow(ctx, id)
		switch {
		case p == nil:
			// A save replaced the row before its turn came.
			continue
		case err == nil:
			landed = append(landed, p)
			continue
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			// Cut short by the writer's stop (run's context, or a
			// flush's deadline): the final flush writes it, or reports
			// that it could not.
			w.log.Debug("store write cut short by the stop", "session_id", id, "err", err)
			continue
		}
		if failed == 0 {
			firstFailed, failErr = id, err
		}
		failed++
		w.metrics.storeErrors.Inc()
	}
	return landed, firstErr
}

// writeRow writes the batch's write for id, holding its row, and returns
// it: nil when a save replaced it first. One that failed goes back to
// pending, under anything enqueued meanwhile, before the row is let go.
func (w *writer) writeRow(ctx context.Context, id string) (*pendingWrite, error) {
	if err := w.lockRow(ctx, id); err != nil {
		// Cut short without the row: a save may replace the write at any
		// moment, so it is looked up and put back at once.
		w.mu.Lock()
		defer w.mu.Unlock()
		p := w.inflight[id]
		if p == nil {
			return nil, nil
		}
		w.requeueLocked(id, p)
		return p, err
	}
	defer w.unlockRow(id)
	w.mu.Lock()
	p := w.inflight[id]
	w.mu.Unlock()
	if p == nil {
		return nil, nil
	}
	err := w.write(ctx, id, p)
	if errors.Is(err, ErrSessionNotFound) {
		// The row was deleted (retention) while the session lingered:
		// there is nothing left to update.
		w.log.Debug("session row gone; update dropped", "session_id", id)
		err = nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.requeueLocked(id, p)
		return p, err
	}
	p.landed = true
	return p, nil
}

// requeueLocked moves p, the batch's write for id that did not land, back
// to pending, under anything enqueued since. w.mu must be held.
func (w *writer) requeueLocked(id string, p *pendingWrite) {
	delete(w.inflight, id)
	if newer := w.pending[id]; newer != nil {
		w.pending[id] = p.takeOver(newer)
	} else {
		w.pending[id] = p
	}
}

func (w *writer) write(ctx context.Context, id string, p *pendingWrite) error {
	defer prometheus.NewTimer(w.metrics.storeLatency).ObserveDuration()
	ctx, cancel := context.WithTimeout(ctx, writerTimeout)
	defer cancel()
	return w.store.UpdateSession(ctx, id, p.upd)
}

// failed records a batch of which n writes failed, to be retried. Only
// the batches count: a create's first save (saveNow) that fails is its
// caller's error, retried by nobody, and may be refused for reasons of
// its own (a live id elsewhere in a cluster).
func (w *writer) failed(err error, n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failing.IsZero() {
		w.failing = time.Now()
	}
	w.failErr = err
	w.retried += n
}

// landed records a batch whose writes all landed, and says so once after
// failures.
func (w *writer) landed() {
	w.mu.Lock()
	since, retried := w.failing, w.retried
	w.failing, w.failErr, w.retried = time.Time{}, nil, 0
	w.mu.Unlock()
	if !since.IsZero() {
		w.log.Info("store writes land again", "failing_for", time.Since(since).Round(time.Millisecond), "failed_writes", retried)
	}
}

// writeHealth returns how long writes have been failing, and the last
// failure; zero and nil while the last write landed.
func (w *writer) writeHealth() (time.Duration, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failing.IsZero() {
		return 0, nil
	}
	return time.Since(w.failing), w.failErr
}
