package core

import (
	"context"
	"fmt"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// attachable reports whether Attach would find the session, without
// attaching.
func (m *Manager) attachable(id string) error {
	m.mu.Lock()
	s := m.sessions[id]
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if s == nil {
		return fmt.Errorf("%w: %q", ErrSessionNotFound, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stateStarting || s.state == stateDestroyed {
		return fmt.Errorf("%w: %q", ErrSessionNotFound, id)
	}
	return nil
}

// Attach adds a client to a live or lingering session. The session becomes
// ACTIVE and its idle timer stops. Close the attachment to detach.
func (m *Manager) Attach(ctx context.Context, id string) (*Attachment, error) {
	m.mu.Lock()
	s := m.sessions[id]
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if s == nil {
		return nil, fmt.Errorf("%w: %q", ErrSessionNotFound, id)
	}
	// Counted before it exists (m.mu is never taken under s.mu), so Close
	// cannot miss it.
	m.countAttachment(1)
	s.mu.Lock()
	if s.state == stateStarting || s.state == stateDestroyed {
		s.mu.Unlock()
		m.countAttachment(-1)
		return nil, fmt.Errorf("%w: %q", ErrSessionNotFound, id)
	}
	p := s.ring.replayPoint()
	a := &Attachment{
		s:        s,
		wakeC:    make(chan struct{}, 1),
		off:      p.off,
		preamble: p.modes.preamble(),
		hello: Hello{
			SessionID: id,
			Size:      shared.Size{Cols: uint16(s.rec.Cols), Rows: uint16(s.rec.Rows)},
			Offset:    p.off,
		},
	}
	s.attachments[a] = struct{}{}
	n := len(s.attachments)
	s.rec.ActiveConnections = n
	u := SessionUpdate{ActiveConnections: &n}
	if s.state == stateRunning {
		if s.idleTimer != nil {
			s.idleTimer.Stop()
			s.idleTimer = nil
		}
		st := StatusActive
		s.rec.Status = st
		u.Status = &st
	}
	s.mu.Unlock()
	m.writer.update(id, u)
	m.metrics.clients.Inc()
	return a, nil
}

// countAttachment tracks the open attachments, for Close to wait on.
func (m *Manager) countAttachment(delta int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attachments += delta
	if m.attachments == 0 && m.detached != nil {
		close(m.detached)
		m.detached = nil
	}
}

// detach removes a from its session; the last one out makes the session
// IDLE and arms its idle timer.
func (m *Manager) detach(a *Attachment) {
	s := a.s
	s.mu.Lock()
	a.closed = true
	if _, ok := s.attachments[a]; !ok {
		s.mu.Unlock()
		return
	}
	delete(s.attachments, a)
	n := len(s.attachments)
	live := s.state == stateRunning || s.state == stateExited
	if live {
		s.rec.ActiveConnections = n
	}
	var u SessionUpdate
	u.ActiveConnections = &n
	if n == 0 && s.state == stateRunning {
		st := StatusIdle
		s.rec.Status = st
		u.Status = &st
	}
	s.mu.Unlock()
	m.countAttachment(-1)
	m.metrics.clients.Dec()
	if live {
		m.writer.update(s.id, u)
	}
	if n == 0 {
		m.armIdle(s, true)
		m.keepExited(s)
	}
}

// armIdle starts s's idle timer if s is running with no client. lastLeft
// says the last client just left (only then does DestroyWhenIdle apply).
func (m *Manager) armIdle(s *session, lastLeft bool) {
	timeout := m.opts.IdleTimeout
	if timeout == NoIdleTimeout || (timeout == DestroyWhenIdle && !lastLeft) {
		return
	}
	if timeout == DestroyWhenIdle {
		timeout = 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning || len(s.attachments) > 0 {
		return
	}
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	s.idleTimer = time.AfterFunc(timeout, func() { m.idleExpired(s) })
}

func (m *Manager) idleExpired(s *session) {
	m.mu.Lock()
	if m.closed || m.sessions[s.id] != s {
		m.mu.Unlock()
		return
	}
	s.mu.Lock()
	idle := s.state == stateRunning && len(s.attachments) == 0
	s.mu.Unlock()
	if !idle {
		m.mu.Unlock()
		return
	}
	delete(m.sessions, s.id)
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()
	s.log.Info("session idle too long; destroying", "idle_timeout", m.opts.IdleTimeout)
	m.teardown(m.ctx, s, CloseNormal, CloseReasonDestroyed, ReasonIdleTimeout)
}
