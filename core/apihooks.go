package core

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file holds the exported methods the HTTP API (core/api) is built
// on, beyond the Manager's lifecycle methods.

// Attachable reports whether Attach would find session id and take the
// client, without attaching: nil, ErrClosed, or an error wrapping
// ErrSessionNotFound or ErrTooManyClients. It is AttachableWith for a
// writer.
func (m *Manager) Attachable(id string) error { return m.attachable(id, AttachWrite) }

// AttachableWith is Attachable for a client that attaches in mode: a
// viewer finds no place where a writer would (session's viewers give way
// to writers; see AttachOptions).
func (m *Manager) AttachableWith(id string, mode AttachMode) error {
	if mode != AttachWrite && mode != AttachRead {
		return fmt.Errorf("%w: attach mode %d", ErrInvalidArgument, mode)
	}
	return m.attachable(id, mode)
}

// EndedSession returns session id's record when it is no longer live and
// has ended (TERMINATED or ERROR), with the writes not yet in the store
// applied; ok is false when it is live, starting or unknown. A session
// being destroyed is waited for, within ctx and endingWait, so that it
// reads as ended rather than as unknown; the store, within storeTimeout.
// A store that fails or does not answer is an error wrapping
// ErrStoreUnavailable, as GetSession's: the session may have ended, and
// saying it is unknown would send the client away (404) from a session
// it can still learn the end of.
func (m *Manager) EndedSession(ctx context.Context, id string) (rec SessionRecord, ok bool, err error) {
	if err := m.attachable(id, AttachRead); !errors.Is(err, ErrSessionNotFound) {
		return SessionRecord{}, false, nil
	}
	m.mu.Lock()
	ending := m.ending[id]
	m.mu.Unlock()
	if ending != nil {
		t := time.NewTimer(endingWait)
		select {
		case <-ending:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	rec, err = m.store.GetSession(sctx, id)
	switch {
	case err == nil:
		m.writer.overlay(&rec)
	case errors.Is(err, ErrSessionNotFound):
		return SessionRecord{}, false, nil
	default:
		return SessionRecord{}, false, storeFailed(fmt.Errorf("reading session %q: %w", id, err))
	}
	if rec.Status != StatusTerminated && rec.Status != StatusError {
		return SessionRecord{}, false, nil
	}
	return rec, true, nil
}

// endingWait bounds EndedSession's wait for a destroy under way: what a
// destroy waits for its kill. A variable for the tests.
var endingWait = killTimeout

// ClientDropped counts a client disconnected because it accepted no
// output for the write timeout (the ptyhost_client_drops_total metric).
func (a *Attachment) ClientDropped() { a.s.deps.metrics.clientDrops.Inc() }

// ValidSize reports whether cols×rows is a terminal size a session may
// have: both from 1 to MaxTermSize. The error wraps ErrInvalidArgument.
func ValidSize(cols, rows int) error { return validSize(cols, rows) }
