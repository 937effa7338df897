package core

import (
	"context"
	"time"
)

// This file holds the pump's flow control. A session's pump stops reading
// the PTY, as a real terminal that cannot keep up slows the program
// writing to it (the plugin's stream fills, the plugin stops reading the
// PTY, and the program blocks in write), while either
//
//   - every attached writing client is behind, and no viewer reads within
//     the high-water mark, or
//   - a writing client that is keeping up is behind: one that, at some time in
//     the last keepUpWindow, read while within the high-water mark and not
//     behind, or came back within the low-water mark.
//
// A client is behind from when the pump finds it more than the high-water
// mark behind the end of the output until it comes back within the
// low-water mark. So writing clients that keep reading all get every byte, at the
// pace of the slowest of them, however many share the session; a client
// that stops reading holds the session for keepUpWindow at most, then is
// left behind and later reset, while others read on. One that trickles,
// once behind, must catch up from the high-water mark to the low-water
// mark once a keepUpWindow to hold the session, so it cannot slow the
// others below highWater-lowWater per keepUpWindow: were it enough to come within the
// high-water mark, a client reading one PTY read's worth per keepUpWindow
// would hold the session to that pace. With no client attached the pump
// never waits, so the ring keeps draining; clients on their way out (their
// close taken, or displaced by a writer) count as none. Viewers (read-only)
// never hold the pump, since the read-only token must not slow a session's
// program or its writers: a viewer that falls behind is reset once its
// bytes are overwritten, as a client that stops reading is. A viewer
// within the high-water mark does keep the pump from waiting for writers
// that are all behind, as any reading client does.
//
// A client's lag stays within the ring while the pump waits for it: the
// pump reads only when it is at most highWater behind, and at most
// capacity-highWater bytes at a time. A writing client that attached
// during the read, replayed from near the ring's oldest end, could still
// lose its replay to the read's bytes: the pump also holds those, before
// committing them, while they would drop bytes such a client keeping up
// has yet to read (roomMustWait).

// keepUpWindow is how long since it last kept up a client still holds the
// pump: longer than a busy machine deschedules a
// reading client, shorter than anyone would call a stall.
const keepUpWindow = 500 * time.Millisecond

// highWater is how far behind the end of the output a client may be before
// the pump waits for it: half the ring.
func (s *session) highWater() int64 { return int64(s.ring.Capacity() / 2) }

// lowWater is how far behind a client that is behind must come again for
// the pump to read on, and for the client to count as keeping up: half the
// high-water mark, a quarter of the ring.
func (s *session) lowWater() int64 { return s.highWater() / 2 }

// maxRead is the most the pump reads at a time, so that one read never
// pushes a client at the high-water mark out of the ring.
func (s *session) maxRead() int { return max(s.ring.Capacity()-s.ring.Capacity()/2, 1) }

// mustWait reports whether the pump must wait before its next read (see
// above), and, when it must because of a client keeping up, until when
// that client holds it (the zero time otherwise). s.mu must be held.
func (s *session) mustWait(now time.Time) (bool, time.Time) {
	if s.state != stateRunning || len(s.attachments) == 0 {
		return false, time.Time{}
	}
	hw, lw := s.highWater(), s.lowWater()
	allBehind, counted := true, false
	var until time.Time
	for a := range s.attachments {
		if a.closed || a.displaced {
			continue // on its way out: its close is all it is owed
		}
		if a.readOnly {
			// A viewer never holds the pump: what the read-only token
			// allows must slow nothing. But one that reads on keeps
			// writers that all stopped reading from holding it for good.
			if s.ring.End()-a.off <= hw {
				allBehind = false
			}
			continue
		}
		counted = true
		switch lag := s.ring.End() - a.off; {
		case lag > hw:
			a.behind = true
		case lag <= lw:
			a.behind = false
		}
		if !a.behind {
			allBehind = false
			continue
		}
		if end := a.keptUp.Add(keepUpWindow); end.After(now) && end.After(until) {
			until = end
		}
	}
	if allBehind && counted {
		return true, time.Time{}
	}
	return !until.IsZero(), until
}

// waitFlow blocks the pump while mustWait holds, until a client catches
// up, leaves or stops keeping up, the session stops running (teardown,
// via wakeAll) or ctx ends. It reports whether the session was detached
// (Manager.Detach): the pump must not read another byte, which the next
// server reads from the plugin instead.
func (s *session) waitFlow(ctx context.Context) (detached bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wait, until := s.mustWait(time.Now()); wait {
		s.waitLocked(ctx, until, s.mustWait)
	}
	return s.detached
}

// roomMustWait reports whether committing n bytes read must wait, and
// until when: when they would push out of the ring bytes that a writing
// client holding the pump has not read. Before its read the pump waited
// for every such client then attached; one that attached during the read
// is replayed from near the ring's oldest end, which the read's bytes
// could push out before it reads one, so that it is reset at once. It
// holds the pump as a client behind does (mustWait), for keepUpWindow
// from when it last kept up (its attach) at most; a client that read past
// what the commit drops holds nothing. s.mu must be held.
func (s *session) roomMustWait(now time.Time, n int) (bool, time.Time) {
	floor := s.ring.End() + int64(n) - int64(s.ring.Capacity())
	if s.state != stateRunning || floor <= s.ring.Start() {
		return false, time.Time{}
	}
	var until time.Time
	for a := range s.attachments {
		if a.closed || a.displaced || a.readOnly || a.off >= floor {
			continue
		}
		if end := a.keptUp.Add(keepUpWindow); end.After(now) && end.After(until) {
			until = end
		}
	}
	return !until.IsZero(), until
}

// makeRoomLocked blocks the pump, with n bytes read, while roomMustWait
// holds, or until ctx ends; then they are committed whatever a client
// missed, since the plugin has sent them. s.mu must be held.
func (s *session) makeRoomLocked(ctx context.Context, n int) {
	wait, until := s.roomMustWait(time.Now(), n)
	if !wait {
		return
	}
	s.roomFloor = s.ring.End() + int64(n) - int64(s.ring.Capacity())
	s.waitLocked(ctx, until, func(now time.Time) (bool, time.Time) { return s.roomMustWait(now, n) })
	s.roomFloor = 0
}

// waitLocked waits on flow, which s.mu is held for, while must (first true
// until until) holds and ctx has not ended, looking again when woken and
// when a client that holds the pump stops keeping up.
func (s *session) waitLocked(ctx context.Context, until time.Time, must func(time.Time) (bool, time.Time)) {
	wake := func() {
		s.mu.Lock()
		s.flow.Broadcast()
		s.mu.Unlock()
	}
	stop := context.AfterFunc(ctx, wake)
	defer stop()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for wait := true; wait && ctx.Err() == nil; wait, until = must(time.Now()) {
		if !until.IsZero() {
			// Look again when the client holding the pump stops counting
			// as keeping up.
			if timer == nil {
				timer = time.AfterFunc(time.Until(until), wake)
			} else {
				timer.Reset(time.Until(until))
			}
		}
		s.pumpWaiting = true
		s.flow.Wait()
	}
	s.pumpWaiting = false
}

// flowProgress is called when a has read output: a client within the
// high-water mark that is not behind, or one back within the low-water
// mark, is keeping up (and, back there, no longer behind), and wakes the
// waiting pump. A client that keeps reading a little slower than the
// program writes drifts from the low-water mark towards the high-water
// mark without ever being behind, and keeps up all the way. s.mu must be
// held.
func (s *session) flowProgress(a *Attachment) {
	if s.roomFloor != 0 && a.off >= s.roomFloor {
		// Read past what the pump's commit drops (makeRoomLocked).
		s.flow.Broadcast()
	}
	lag := s.ring.End() - a.off
	if lag > s.highWater() || (a.behind && lag > s.lowWater()) {
		return
	}
	a.keptUp = time.Now()
	if lag <= s.lowWater() {
		a.behind = false
	}
	if s.pumpWaiting {
		s.flow.Broadcast()
	}
}

// flowChanged wakes the waiting pump to look again: a client came or left,
// or the session's state changed. s.mu must be held.
func (s *session) flowChanged() {
	if s.pumpWaiting {
		s.flow.Broadcast()
	}
}
