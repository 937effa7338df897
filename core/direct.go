package core

// Direct delivery: a client that has taken every byte so far and waits in
// Next for more, alone on its session, gets the next output written by the
// session's pump itself (Attachment.Direct), rather than by its own
// goroutine after a wake-up. A keystroke's echo then crosses no goroutine
// hand-off in the server, which is the shortest path a typing user's
// bytes can take; everything else (more clients, a client behind, owed
// frames, a slow write) goes through Next as before.

// Direct sets fn as the attachment's direct writer. From then on, output
// that finds the attachment its session's only one, waiting in Next with
// every byte before taken and nothing else owed, is handed to fn by the
// session's reader and not returned by Next. fn must send p to the client
// as Next's FrameOutput would be sent and return once it is sent; it may
// block, which holds the session's output back as a slow client does, so
// it must give up when the client's write times out. If it returns an
// error, the bytes are the client's loss: fn must end the client's
// connection then, and Next carries on from after them. p is at most 64
// KiB and must not be kept.
//
// Call it from the goroutine that calls Next. Attachments without a direct
// writer (the default) get all their output from Next.
func (a *Attachment) Direct(fn func(p []byte) error) {
	a.s.mu.Lock()
	a.direct = fn
	a.s.mu.Unlock()
}

// directTarget returns the attachment the output just committed, n bytes,
// may go to directly, or nil. s.mu must be held.
func (s *session) directTarget(n int) *Attachment {
	if len(s.attachments) != 1 || s.state != stateRunning || s.exit != nil {
		return nil
	}
	for a := range s.attachments {
		if a.direct == nil || !a.waiting || a.directBusy || a.closed || len(a.wakeC) > 0 ||
			a.off != s.ring.End()-int64(n) || a.resetOwed || len(a.modes) > 0 || a.sizeChanged || len(a.notices) > 0 {
			return nil
		}
		if _, ok := s.restartMark(a.off, a.restartPast-1); ok {
			return nil
		}
		return a
	}
	return nil
}

// deliver writes p, taken by a already (directTarget), with a's direct
// writer, then lets a's Next go on, waking it if it was woken meanwhile.
func (s *session) deliver(a *Attachment, p []byte) {
	err := a.direct(p)
	s.mu.Lock()
	a.directBusy = false
	if err != nil {
		a.direct = nil // the connection is ending: Next sees to the rest
	}
	if a.wokenBusy || err != nil {
		a.wokenBusy = false
		a.wake()
	}
	s.mu.Unlock()
}
