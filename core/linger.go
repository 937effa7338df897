package core

import (
	"container/list"
	"sync"
	"time"
)

// A session whose process exits lingers: it stays in the map, attachable,
// for Options.Linger, so that a client that reconnects sees its end and
// exit code, and keeps only the end of its scrollback, within a budget
// shared by every exited session.

// exited lets s, whose process ended on its own, linger: it stays
// attachable for Options.Linger, keeping the end of its scrollback.
func (m *Manager) exited(s *session) {
	m.linger(s)
	m.keepExited(s)
}

// linger keeps an exited session attachable for Options.Linger.
func (m *Manager) linger(s *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateExited {
		return
	}
	s.rec.IdleDeadline = time.Time{} // the idle timer no longer applies
	s.lingerTimer = time.AfterFunc(m.opts.Linger, func() {
		m.mu.Lock()
		if m.sessions[s.id] != s || m.closed {
			m.mu.Unlock()
			return
		}
		delete(m.sessions, s.id)
		m.mu.Unlock()
		s.mu.Lock()
		s.state = stateDestroyed
		s.closeCode, s.closeReason = CloseNormal, CloseReasonExited
		// A client still attached gets what it has not read, and the
		// exit, before the close: the process ended on its own.
		s.drain = true
		s.wakeAll()
		s.mu.Unlock()
		m.forgetExited(s)
	})
}

// ExitReplayBytes is about how much of its last output an exited session
// keeps for clients that attach while it lingers: the replay starts at the
// newest safe point at least ExitReplayBytes before the end, so it holds
// that much and at most the spacing of safe points more (ring.shrink). The
// rest of its scrollback is released when it exits.
const ExitReplayBytes = 16 << 10

// lingerRings accounts for the scrollback that exited sessions keep, and
// keeps it within Options.LingerScrollbackBytes by dropping the
// scrollback of the sessions that exited first.
type lingerRings struct {
	mu    sync.Mutex // protects the following; taken before any session's mu
	order list.List  // of *session, in the order they exited
	elems map[*session]*list.Element
	bytes map[*session]int // what each keeps
	total int
}

// keepExited releases what s, which has exited, no longer needs of its
// scrollback, accounts for the rest, and drops the oldest exited
// sessions' scrollback while the total is over the budget. It is called
// when s exits and again when its last client leaves, since a client still
// reading holds the bytes it has yet to read.
func (m *Manager) keepExited(s *session) {
	l := &m.lingering
	l.mu.Lock()
	defer l.mu.Unlock()
	s.mu.Lock()
	if s.state != stateExited {
		// Gone already (forgetExited follows the change of state).
		s.mu.Unlock()
		return
	}
	floor := s.ring.End()
	for a := range s.attachments {
		floor = min(floor, a.off)
	}
	s.ring.shrink(ExitReplayBytes, floor)
	size := s.ring.Footprint()
	s.mu.Unlock()

	if l.elems == nil {
		l.elems = make(map[*session]*list.Element)
		l.bytes = make(map[*session]int)
	}
	if _, ok := l.elems[s]; !ok {
		l.elems[s] = l.order.PushBack(s)
	}
	l.total += size - l.bytes[s]
	l.bytes[s] = size
	for l.total > m.opts.LingerScrollbackBytes && l.order.Len() > 0 {
		oldest := l.order.Remove(l.order.Front()).(*session)
		l.total -= l.bytes[oldest]
		delete(l.elems, oldest)
		delete(l.bytes, oldest)
		oldest.mu.Lock()
		oldest.ring.drop()
		oldest.wakeAll() // a reader behind resyncs at the end
		oldest.mu.Unlock()
		oldest.log.Debug("lingering scrollback over budget; released", "budget", m.opts.LingerScrollbackBytes)
	}
}

// forgetExited stops accounting for s's scrollback: s is gone.
func (m *Manager) forgetExited(s *session) {
	l := &m.lingering
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.elems[s]; ok {
		l.order.Remove(e)
		l.total -= l.bytes[s]
		delete(l.elems, s)
		delete(l.bytes, s)
	}
}

// lingeringScrollback returns the bytes exited sessions keep, all together.
func (m *Manager) lingeringScrollback() int {
	m.lingering.mu.Lock()
	defer m.lingering.mu.Unlock()
	return m.lingering.total
}
