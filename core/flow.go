package core

import "context"

// This file holds the pump's flow control. A session's pump stops reading
// the PTY while every attached client is more than the high-water mark
// behind the end of the output, as a real terminal that cannot keep up
// slows the program writing to it: the plugin's stream fills, the plugin
// stops reading the PTY, and the program blocks in write. A client slower
// than the fastest one is left behind and reset, as before; it never slows
// the session. With no client attached the pump never waits, so the ring
// keeps draining.
//
// The fastest client's lag stays within the ring: the pump reads only when
// it is at most highWater, and reads at most capacity-highWater bytes at a
// time, so a lone client that keeps reading is never reset and receives
// every byte.

// highWater is how far behind the end of the output the fastest client may
// be before the pump stops reading: half the ring.
func (s *session) highWater() int64 { return int64(s.ring.Capacity() / 2) }

// maxRead is the most the pump reads at a time, so that one read never
// pushes a client at the high-water mark out of the ring.
func (s *session) maxRead() int { return max(s.ring.Capacity()-s.ring.Capacity()/2, 1) }

// mustWait reports whether the pump must wait before its next read: the
// session runs and every client attached is past the high-water mark.
// s.mu must be held.
func (s *session) mustWait() bool {
	if s.state != stateRunning || len(s.attachments) == 0 {
		return false
	}
	hw := s.highWater()
	for a := range s.attachments {
		if !a.closed && s.ring.End()-a.off <= hw {
			return false
		}
	}
	return true
}

// waitFlow blocks the pump while mustWait holds, until a client catches
// up or leaves, the session stops running (teardown, via wakeAll) or ctx
// ends.
func (s *session) waitFlow(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.mustWait() {
		return
	}
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.flow.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	for s.mustWait() && ctx.Err() == nil {
		s.pumpWaiting = true
		s.flow.Wait()
	}
	s.pumpWaiting = false
}

// flowProgress is called when a has read output: it wakes the waiting
// pump once a is within the high-water mark. s.mu must be held.
func (s *session) flowProgress(a *Attachment) {
	if s.pumpWaiting && s.ring.End()-a.off <= s.highWater() {
		s.flow.Broadcast()
	}
}

// flowChanged wakes the waiting pump to look again: a client left, or the
// session's state changed. s.mu must be held.
func (s *session) flowChanged() {
	if s.pumpWaiting {
		s.flow.Broadcast()
	}
}
