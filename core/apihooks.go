package core

import (
	"context"
	"errors"
)

// This file holds the exported methods the HTTP API (core/api) is built
// on, beyond the Manager's lifecycle methods.

// Attachable reports whether Attach would find session id, without
// attaching: nil, ErrClosed, or an error wrapping ErrSessionNotFound.
func (m *Manager) Attachable(id string) error { return m.attachable(id) }

// EndedSession returns session id's record when it is no longer live and
// has ended (TERMINATED or ERROR), with the writes not yet in the store
// applied; ok is false when it is live, starting, unknown, or the store
// does not answer.
func (m *Manager) EndedSession(ctx context.Context, id string) (rec SessionRecord, ok bool) {
	if err := m.attachable(id); !errors.Is(err, ErrSessionNotFound) {
		return SessionRecord{}, false
	}
	rec, err := m.store.GetSession(ctx, id)
	if err != nil {
		return SessionRecord{}, false
	}
	m.writer.overlay(&rec)
	if rec.Status != StatusTerminated && rec.Status != StatusError {
		return SessionRecord{}, false
	}
	return rec, true
}

// ClientDropped counts a client disconnected because it accepted no
// output for the write timeout (the ptyhost_client_drops_total metric).
func (a *Attachment) ClientDropped() { a.s.deps.metrics.clientDrops.Inc() }

// ValidSize reports whether cols×rows is a terminal size a session may
// have: both from 1 to MaxTermSize. The error wraps ErrInvalidArgument.
func ValidSize(cols, rows int) error { return validSize(cols, rows) }
