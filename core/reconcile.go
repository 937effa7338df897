package core

import (
	"context"
	"fmt"
)

// ReasonServerLost is recorded for sessions that were live when a previous
// server process stopped without ending them.
const ReasonServerLost = "server_lost: the server stopped without ending the session"

// Reconcile records as ERROR every session the store holds as STARTING,
// ACTIVE or IDLE that this manager is not running: their server stopped
// without ending them (a crash, SIGKILL, power loss), so they are not alive
// whatever the store says. Their processes went with their plugins, which
// end their sessions when the server that started them goes away. Call it
// once at start-up, before creating sessions; it returns how many sessions
// it reconciled.
//
// One database serves one ptyhost server: a second server reconciling would
// declare the first one's sessions lost.
func (m *Manager) Reconcile(ctx context.Context) (int, error) {
	recs, err := m.store.ListSessions(ctx, StatusStarting, StatusActive, StatusIdle)
	if err != nil {
		return 0, fmt.Errorf("core: listing sessions to reconcile: %w", err)
	}
	n := 0
	for _, rec := range recs {
		m.mu.Lock()
		_, live := m.sessions[rec.ID]
		m.mu.Unlock()
		if live {
			continue
		}
		status, reason, zero := StatusError, ReasonServerLost, 0
		if err := m.store.UpdateSession(ctx, rec.ID, SessionUpdate{
			Status: &status, StatusReason: &reason, ActiveConnections: &zero,
		}); err != nil {
			return n, fmt.Errorf("core: reconciling session %q: %w", rec.ID, err)
		}
		m.log.Warn("session was left live by a previous server; recorded as ERROR", "session_id", rec.ID)
		n++
	}
	return n, nil
}
