package core

import (
	"context"
	"fmt"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// attachable reports whether an attach in mode would find the session and
// take one more client, without attaching.
func (m *Manager) attachable(id string, mode AttachMode) error {
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
	return s.admits(mode, m.opts.MaxClients)
}

// Attach adds a client to a live or lingering session. The session becomes
// ACTIVE and its idle timer stops. Close the attachment to detach. The
// client's output begins with the replay: from the session's first byte
// while the ring still holds it, else from the oldest safe point, with the
// terminal modes in force there (a FrameModes first).
func (m *Manager) Attach(ctx context.Context, id string) (*Attachment, error) {
	return m.attach(ctx, id, -1, "", AttachWrite)
}

// AttachFrom is Attach for a client that has received the session's output
// up to the absolute offset off and resumes there. While the ring still
// holds off (off may be any byte offset, up to the end of the output), the
// client receives exactly the bytes from off on: the hello's offset is off,
// and no modes are sent, since the client's terminal is in them already.
// Otherwise — off is older than the ring or beyond the end — the client is
// told FrameReset with the replay point first, then gets Attach's replay.
// A negative off is ErrInvalidArgument.
func (m *Manager) AttachFrom(ctx context.Context, id string, off int64) (*Attachment, error) {
	if off < 0 {
		return nil, fmt.Errorf("%w: offset %d is negative", ErrInvalidArgument, off)
	}
	return m.attach(ctx, id, off, "", AttachWrite)
}

// attach is Attach (off < 0), AttachFrom and AttachWith; a resume (off >=
// 0) with an epoch other than the session's is not one. A session with as
// many clients as its limit (session.maxClients) is ErrTooManyClients,
// unless a writer finds a viewer to displace (session.admits), checked
// under s.mu with the attachment's insertion, so that two racing clients
// cannot both take the last place.
func (m *Manager) attach(_ context.Context, id string, off int64, epoch string, mode AttachMode) (*Attachment, error) {
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
	if err := s.admits(mode, m.opts.MaxClients); err != nil {
		s.mu.Unlock()
		m.countAttachment(-1)
		return nil, err
	}
	if mode == AttachWrite {
		s.displaceViewer(m.opts.MaxClients)
	}
	s.attachSeq++
	a := &Attachment{
		s:        s,
		seq:      s.attachSeq,
		wakeC:    make(chan struct{}, 1),
		readOnly: mode == AttachRead,
		policy:   s.sizePolicy(m.opts.SizePolicy),
		hello: Hello{
			SessionID: id,
			Epoch:     s.epochLocked(),
			Size:      shared.Size{Cols: uint16(s.rec.Cols), Rows: uint16(s.rec.Rows)},
		},
	}
	if off >= 0 && s.ring.Holds(off) && (epoch == "" || epoch == a.hello.Epoch) {
		a.off = off
	} else {
		p := s.ring.replayPoint()
		a.off, a.modes = p.off, p.modes.preamble()
		a.resetOwed = off >= 0
	}
	a.hello.Offset = a.off
	a.hello.End = s.ring.End()
	a.keptUp = time.Now()
	s.attachments[a] = struct{}{}
	if !a.readOnly {
		s.writers++
	}
	s.flowChanged() // a client near the end lets a waiting pump read on
	n := len(s.attachments)
	s.rec.ActiveConnections = n
	u := SessionUpdate{ActiveConnections: &n}
	if s.state == stateRunning && !a.readOnly {
		if s.idleTimer != nil {
			s.idleTimer.Stop()
			s.idleTimer = nil
		}
		s.rec.DetachedAt, s.rec.IdleDeadline = time.Time{}, time.Time{}
		u.DetachedAt = &time.Time{} // clears it
		st := StatusActive
		s.rec.Status = st
		u.Status = &st
	}
	// Under s.mu, as detach's and the exit's: queued before the update
	// of an exit that comes next, which an ACTIVE would otherwise
	// overwrite.
	s.changed(u)
	s.mu.Unlock()
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

// attachmentCount returns how many attachments are open.
func (m *Manager) attachmentCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attachments
}

// detach removes a from its session; the last writer out (a viewer
// counts for nothing) makes the session IDLE and arms its idle timer.
func (m *Manager) detach(a *Attachment) {
	s := a.s
	s.mu.Lock()
	a.closed = true
	if _, ok := s.attachments[a]; !ok {
		s.mu.Unlock()
		return
	}
	delete(s.attachments, a)
	if !a.readOnly {
		s.writers--
	}
	if a.displaced {
		s.displaced--
	}
	lastWriter := !a.readOnly && s.writers == 0
	if s.typist == a {
		s.typist = nil
	}
	s.flowChanged() // the pump may have waited for this client
	n := len(s.attachments)
	// Its asked size no longer counts: the terminal returns to the size
	// the others ask for.
	resize := a.askedSeq != 0 && n > 0 && s.state == stateRunning
	live := s.state == stateRunning || s.state == stateExited
	if live {
		s.rec.ActiveConnections = n
	}
	var u SessionUpdate
	u.ActiveConnections = &n
	if lastWriter && s.state == stateRunning {
		st := StatusIdle
		s.rec.Status = st
		u.Status = &st
		now := s.deps.now()
		s.rec.DetachedAt = now
		u.DetachedAt = &now
	}
	if live {
		// Under s.mu: queued after, never before, the update of an exit
		// that comes next, which an IDLE would otherwise overwrite.
		s.changed(u)
	}
	s.mu.Unlock()
	m.countAttachment(-1)
	m.metrics.clients.Dec()
	if resize {
		m.sizeAfterLeave(s, a.policy)
	}
	if lastWriter {
		m.armIdle(s, true)
	}
	if n == 0 {
		m.keepExited(s)
	}
}

// armIdle starts s's idle timer if s is running with no writer (viewers
// do not count). lastLeft says the last writer just left (only then does
// DestroyWhenIdle apply).
// The session's own timeout applies (see idletimeout.go); IdleDeadline
// says when it will fire.
func (m *Manager) armIdle(s *session, lastLeft bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	timeout := s.idleTimeout()
	if timeout == NoIdleTimeout || (timeout == DestroyWhenIdle && !lastLeft) {
		return
	}
	if timeout == DestroyWhenIdle {
		timeout = 0
	}
	if s.state != stateRunning || s.writers > 0 {
		return
	}
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	s.rec.IdleDeadline = s.deps.now().Add(timeout)
	s.idleTimer = time.AfterFunc(timeout, func() { m.idleExpired(s) })
}

func (m *Manager) idleExpired(s *session) {
	m.mu.Lock()
	if m.closed || m.sessions[s.id] != s {
		m.mu.Unlock()
		return
	}
	s.mu.Lock()
	idle := s.state == stateRunning && s.writers == 0
	s.mu.Unlock()
	if !idle {
		m.mu.Unlock()
		return
	}
	done := m.takeOutLocked(s)
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()
	defer done()
	s.log.Info("session idle too long; destroying", "idle_timeout", s.snapshot().IdleTimeout)
	m.teardown(m.ctx, s, CloseNormal, CloseReasonDestroyed, ReasonIdleTimeout)
}
