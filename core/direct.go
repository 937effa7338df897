package core

import (
	"errors"
	"time"
)

// Direct delivery: a client that has taken every byte so far and waits in
// Next for more, alone on its session or the one whose input came last
// (the typist), gets the next output written by the session's pump itself
// (Attachment.Direct), rather than by its own goroutine after a wake-up. A
// keystroke's echo then crosses no goroutine hand-off in the server, which
// is the shortest path a typing user's bytes can take; the session's other
// clients (the watchers) are woken after that write, at most once per
// watcherDelay (busyWatcherDelay at machine speed), and everything else (a
// client behind, owed frames, a slow write) goes through Next as before.

// ErrWouldBlock is what a direct writer (Attachment.Direct) returns when
// it cannot send without waiting: the bytes then go through Next.
var ErrWouldBlock = errors.New("the client's connection would block")

// watcherDelay is how long the watchers of a session, its clients other
// than the one a direct write went to, may wait for that output: they are
// woken once per watcherDelay while the typist types, not once per
// keystroke, so that their writes, several per keystroke, do not hold up
// the typist's next echo on a machine with few CPUs, and each of them gets
// a few keystrokes' echoes in one frame. Output that goes through Next
// (more than directMax, or no direct target) wakes every client at once,
// as before. A variable for tests.
var watcherDelay = 2 * time.Millisecond

// While direct writes come faster than one per busyGap — faster than
// anyone types: a script's or a paste's input, or a program printing
// line after line to its typist — the watchers get the output once per
// busyWatcherDelay instead. Their writes would otherwise come every
// watcherDelay, in the middle of one of the typist's echoes in a dozen at
// machine speed, and hold it up; now in one of three hundred. A human's
// keystrokes come tens of milliseconds apart, and the watchers see each
// within watcherDelay. Variables for tests.
var (
	busyGap          = 2 * watcherDelay
	busyWatcherDelay = 50 * time.Millisecond
)

// directMax is the most output handed to a direct writer at once: an
// echo's or a prompt's, not a flood's, which goes through Next.
const directMax = 4 << 10

// Direct sets fn as the attachment's direct writer. From then on, output
// of at most 4 KiB that finds the attachment its session's only one, or
// the one that wrote the session's last input, waiting in Next with every
// byte before taken and nothing else owed, is handed to fn by the
// session's reader and not returned by Next. fn must send p to the client
// as Next's FrameOutput would be sent, and must not wait for the client:
// if the send would wait (a full socket buffer), it returns ErrWouldBlock
// without sending, and Next returns p instead. Any other error means the
// bytes were lost to the client: fn must end the client's connection
// then, and Next carries on after them. p must not be kept. The session's
// reader, and the session's other clients, wait for fn: bound it (a
// socket with room takes a write at once).
//
// Call it from the goroutine that calls Next. Attachments without a direct
// writer (the default) get all their output from Next.
func (a *Attachment) Direct(fn func(p []byte) error) {
	a.s.mu.Lock()
	a.direct = fn
	a.s.mu.Unlock()
}

// directTarget returns the attachment the output just committed, n bytes,
// may go to directly, with its direct writer, or nil: the session's only
// one, or else its typist. s.mu must be held.
func (s *session) directTarget(n int) (*Attachment, func([]byte) error) {
	if n > directMax {
		return nil, nil
	}
	a := s.typist
	if len(s.attachments) == 1 {
		for only := range s.attachments {
			a = only
		}
	}
	// Waiting with nothing taken since, no wake-up pending and nothing
	// else owed: Next would return these bytes next.
	if a == nil || a.direct == nil || !a.waiting || a.directBusy || len(a.wakeC) > 0 ||
		a.off != s.ring.End()-int64(n) || a.owesFrame() {
		return nil, nil
	}
	return a, a.direct
}

// deliver writes p, taken by a already (directTarget), with fn, a's direct
// writer, then has the session's other clients woken within watcherDelay
// (busyWatcherDelay while direct writes come one on another), and lets
// a's Next go on, waking it if it was woken meanwhile or has p to return
// after all.
func (s *session) deliver(a *Attachment, fn func([]byte) error, p []byte) {
	err := fn(p)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	busy := now.Sub(s.lastDirect) < busyGap // false for the first: a zero time is long ago
	s.lastDirect = now
	if len(s.attachments) > 1 && !s.watchersDue {
		s.watchersDue = true
		d := watcherDelay
		if busy {
			d = busyWatcherDelay
		}
		if s.watchersTimer == nil {
			s.watchersTimer = time.AfterFunc(d, s.wakeWatchers)
		} else {
			s.watchersTimer.Reset(d)
		}
	}
	a.directBusy = false
	switch {
	case errors.Is(err, ErrWouldBlock):
		// Not sent: Next returns it. Nothing was committed meanwhile
		// (the pump is here), so the ring still holds it.
		a.off -= int64(len(p))
	case err != nil:
		a.direct = nil // the connection is ending: Next sees to the rest
	}
	if a.wokenBusy || err != nil {
		a.wokenBusy = false
		a.wake()
	}
}

// wakeWatchers wakes the session's clients that have output to take, when
// watcherDelay has passed since a direct write (deliver).
func (s *session) wakeWatchers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watchersDue = false
	end := s.ring.End()
	for o := range s.attachments {
		if o.off < end {
			o.wake()
		}
	}
}
