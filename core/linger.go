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
	if keepAllFor := m.lingering.keepAllFor; keepAllFor > 0 && m.keepWhole(s, true) {
		s.mu.Lock()
		if s.state == stateExited {
			// Stopped with the session's other timers (teardown): it must
			// not keep a session gone meanwhile, and its ring, reachable.
			s.keepAllTimer = time.AfterFunc(keepAllFor, func() {
				m.keepWhole(s, false)
				m.keepExited(s)
			})
		}
		s.mu.Unlock()
	}
	m.keepExited(s)
}

// keepWhole marks s, which has exited, as keeping its whole scrollback
// (lingerRings.whole), or no longer; false when s is gone already.
func (m *Manager) keepWhole(s *session, on bool) bool {
	l := &m.lingering
	l.mu.Lock()
	defer l.mu.Unlock()
	s.mu.Lock()
	exited := s.state == stateExited
	s.mu.Unlock()
	e, ok := l.wholeElems[s]
	switch {
	case on && exited && !ok:
		if l.wholeElems == nil {
			l.wholeElems = make(map[*session]*list.Element)
		}
		l.wholeElems[s] = l.whole.PushBack(s)
	case !on && ok:
		l.whole.Remove(e)
		delete(l.wholeElems, s)
	}
	return exited
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
		if s.keepAllTimer != nil {
			s.keepAllTimer.Stop()
			s.keepAllTimer = nil
		}
		s.wakeAll()
		s.mu.Unlock()
		m.forgetExited(s)
	})
}

// ExitReplayBytes is about how much of its last output an exited session
// keeps for clients that attach while it lingers: the replay starts at the
// newest safe point at least ExitReplayBytes before the end, so it holds
// that much and at most the spacing of safe points more (ring.shrink). The
// rest of its scrollback is released exitKeepAll after its exit, or sooner
// when the lingering budget needs it.
const ExitReplayBytes = 16 << 10

// exitKeepAll is how long an exited session keeps its whole scrollback,
// within Options.LingerScrollbackBytes, before it keeps only the end
// (ExitReplayBytes): a client that lost its connection as the program
// printed its last output and exited, and reconnects at its offset (as
// ptyhost attach does: it notices a dead connection within 75 s and
// retries for 30 s by default), gets every byte it missed rather
// than a reset to the last 16 KiB. A var for tests: New reads it.
var exitKeepAll = 2 * time.Minute

// lingerRings accounts for the scrollback that exited sessions keep, and
// keeps it within Options.LingerScrollbackBytes: over it, the sessions
// that keep their whole scrollback (exitKeepAll) are cut down to its end,
// then the scrollback of the sessions that exited first is dropped, each
// oldest first.
type lingerRings struct {
	keepAllFor time.Duration // exitKeepAll, as New found it

	mu    sync.Mutex // protects the following; taken before any session's mu
	order list.List  // of *session, in the order they exited
	elems map[*session]*list.Element
	// whole holds those of order that keep their whole scrollback, in
	// the same order.
	whole      list.List
	wholeElems map[*session]*list.Element
	bytes      map[*session]int // what each keeps
	total      int
}

// keepExited releases what s, which has exited, no longer needs of its
// scrollback (all of it while it is in l.whole), accounts for the rest, and
// keeps the total within the budget (lingerRings). It is called when s
// exits, again when its last client leaves, since a client still reading
// holds the bytes it has yet to read, and once exitKeepAll has passed.
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
	if _, whole := l.wholeElems[s]; !whole {
		s.shrinkExitedLocked()
	}
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
	for l.total > m.opts.LingerScrollbackBytes && l.whole.Len() > 0 {
		o := l.whole.Remove(l.whole.Front()).(*session)
		delete(l.wholeElems, o)
		o.mu.Lock()
		o.shrinkExitedLocked()
		size := o.ring.Footprint()
		o.mu.Unlock()
		l.total += size - l.bytes[o]
		l.bytes[o] = size
	}
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
	if e, ok := l.wholeElems[s]; ok {
		l.whole.Remove(e)
		delete(l.wholeElems, s)
	}
}

// lingeringScrollback returns the bytes exited sessions keep, all together.
func (m *Manager) lingeringScrollback() int {
	m.lingering.mu.Lock()
	defer m.lingering.mu.Unlock()
	return m.lingering.total
}

// shrinkExitedLocked cuts s's scrollback down to the end a replay needs
// (ExitReplayBytes), keeping what a client still attached has yet to read.
// s.mu must be held.
func (s *session) shrinkExitedLocked() {
	floor := s.ring.End()
	for a := range s.attachments {
		floor = min(floor, a.off)
	}
	s.ring.shrink(ExitReplayBytes, floor)
}
