package shared

import (
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/ptyhost/ptyhost/internal/bytering"
)

// keepRing is a session's output on the plugin's side: the last capacity
// bytes the session's reader read from the PTY, addressed by absolute
// offset (the count of output bytes before them, from the spawn's
// OutputOffset), the same offsets the host's ring uses. It also carries how
// the reading ended and the session's exit status, so a stream that
// attaches after the end still delivers every kept byte, then the exit.
//
// One reader (serverSession.read) writes; at most one attachment, the
// session stream serving the session, reads from its own cursor. The rule
// between them is the whole flow control: while an attachment is there the
// reader never overwrites bytes the attachment has not taken yet, and waits
// for room instead, which stops reading the PTY and so slows the program
// (backpressure from the host, through gRPC flow control, as a terminal
// slows a program). With no attachment the reader overwrites the oldest
// bytes, so a program whose host is gone never blocks.
//
// The bytes are in a bytering.Ring, the host's kind: it grows on demand, so
// an idle session holds little.
type keepRing struct {
	mu sync.Mutex
	// cond wakes the reader (room made, attachment gone, closed) and the
	// attachment's sender (output, end, taken over, closed). Both wait on
	// it; every change broadcasts.
	cond sync.Cond

	// mu protects the following.
	bytes bytering.Ring

	att *attachment // the stream serving the session; nil while detached

	readDone bool  // the reader stopped reading; readErr says why
	readErr  error // io.EOF at the normal end
	exited   bool  // the PTY's Wait returned: exit or waitErr is set
	exit     ExitStatus
	waitErr  error
	closed   bool // the session was closed: the reader and sender stop

	// full is true while the reader waits for the attachment to take
	// bytes: the PTY is not being read (tests watch it).
	full bool

	// gen counts the attachments made; each has its number.
	gen uint64
	// pending are the input of attachments that stopped serving whose
	// pumps still apply it, oldest first (see inputDrain). A new
	// attachment's input waits for those there when it is made.
	pending []*inputDrain
}

// attachment is one session stream's hold on a keepRing: its cursor, the
// offset of the next byte it sends. A ring has at most one; a new one
// takes over from the old, which ends.
type attachment struct {
	cursor int64
	gen    uint64 // the ring's gen when it was made
	// ended is set when the stream's context ended: its sender stops.
	ended bool
	// gone is closed when the attachment stops serving the session:
	// taken over, detached or closed.
	gone chan struct{}
	// stop, if set, runs once, under the ring's lock, when the attachment
	// stops serving or its stream ends: it closes a byte channel, which
	// makes the pumps blocked on it return. It must not block. With drain
	// the session was detached or taken over, not closed: what its host
	// wrote before is still the session's input (inputDrain).
	stop func(drain bool)
	// direct, if set, writes output to the attachment's byte channel
	// without waiting, from the reader's goroutine under the ring's lock,
	// and returns how many bytes it took. It spares the hand-off to the
	// sender for output that finds the attachment caught up.
	direct func(p []byte) int
	// inFlight is set while the sender writes the frame next gave it:
	// until it asks for the next one, direct must not write, or bytes
	// would overtake the frame.
	inFlight bool

	// input, if set (with stop), is the input a's byte channel still
	// holds when a stops serving: with drain it joins the ring's pending.
	input *inputDrain
	// before are the ring's pending drains when a was made: a's input
	// is applied after theirs (waitTurn). Only a's input pump uses it
	// once it runs.
	before []*inputDrain
}

// stopAttachment runs a's stop, once; with drain a's input joins pending,
// unless its pump ended already. mu must be held.
func (r *keepRing) stopAttachment(a *attachment, drain bool) {
	if a.stop == nil {
		return
	}
	if d := a.input; drain && d != nil && !d.ended {
		r.pending = append(r.pending, d)
	}
	a.stop(drain)
	a.stop = nil
}

// drains reports whether what a's host wrote is still to be applied when
// a stops serving now: the session is not closed, and no attachment was
// made after a (one that was did not wait for a's input). mu must be
// held.
func (r *keepRing) drains(a *attachment) bool {
	return !r.closed && a.gen == r.gen
}

func newKeepRing(capacity int, offset int64) *keepRing {
	r := &keepRing{bytes: bytering.New(capacity, offset)}
	r.cond.L = &r.mu
	return r
}

// write appends p, the reader's latest read. While an attachment is there
// it waits for the attachment to take bytes before overwriting any it has
// not taken; otherwise it overwrites the oldest. It reports false once the
// ring is closed: the reader must stop.
func (r *keepRing) write(p []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	capacity := int64(r.bytes.Capacity())
	if a := r.att; a != nil && a.direct != nil && !a.ended && !r.closed && !a.inFlight &&
		a.cursor == r.bytes.End() && int64(len(p)) <= capacity {
		// The attachment has sent every byte so far: p goes to it
		// straight from here, as much as its connection takes without
		// waiting, and its sender is only woken for the rest.
		r.bytes.Write(p)
		a.cursor += int64(a.direct(p))
		if a.cursor < r.bytes.End() {
			r.cond.Broadcast()
		}
		return true
	}
	for len(p) > 0 {
		for !r.closed && r.att != nil && r.bytes.End()-r.att.cursor >= capacity {
			r.full = true
			r.cond.Wait()
		}
		r.full = false
		if r.closed {
			return false
		}
		n := len(p)
		if r.att != nil {
			n = min(n, int(capacity-(r.bytes.End()-r.att.cursor)))
		}
		r.bytes.Write(p[:n])
		p = p[n:]
		r.cond.Broadcast()
	}
	return true
}

// readEnded records why the reader stopped: io.EOF when the PTY's output
// ended.
func (r *keepRing) readEnded(err error) {
	r.mu.Lock()
	r.readDone, r.readErr = true, err
	r.cond.Broadcast()
	r.mu.Unlock()
}

// exitedWith records the PTY's Wait result.
func (r *keepRing) exitedWith(st ExitStatus, err error) {
	r.mu.Lock()
	r.exited, r.exit, r.waitErr = true, st, err
	r.cond.Broadcast()
	r.mu.Unlock()
}

// attach makes a new attachment the ring's, from offset clamped to the
// bytes kept ([start, end]), taking over from the previous attachment,
// which ends. What the previous one's host wrote on its byte channel and
// the plugin has not applied yet is still applied, before the new
// attachment's input (inputDrain). It returns the attachment and its
// first offset.
func (r *keepRing) attach(offset int64) (a *attachment, start int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	start = min(max(offset, r.bytes.Start()), r.bytes.End())
	a = &attachment{cursor: start, gone: make(chan struct{})}
	if !r.closed {
		r.dropAttachment(true)
		r.gen++
		a.gen = r.gen
		a.before = slices.Clone(r.pending)
		r.att = a
	} else {
		close(a.gone)
	}
	r.cond.Broadcast()
	return a, start
}

// detach ends a if it still serves the ring, which the reader may then
// overwrite again, and reports whether it did (false: taken over, closed).
func (r *keepRing) detach(a *attachment) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.att != a {
		return false
	}
	r.dropAttachment(true)
	r.cond.Broadcast()
	return true
}

// dropAttachment ends the current attachment, if any; drain as for its
// stop. mu must be held.
func (r *keepRing) dropAttachment(drain bool) {
	if r.att != nil {
		close(r.att.gone)
		r.stopAttachment(r.att, drain)
		r.att = nil
	}
}

// onStop sets a's stop, direct and input (the last two may be nil); if a
// already stopped serving, stop runs now.
func (r *keepRing) onStop(a *attachment, stop func(drain bool), direct func([]byte) int, input *inputDrain) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a.stop, a.direct, a.input = stop, direct, input
	if r.att != a || a.ended {
		r.stopAttachment(a, r.drains(a))
	}
}

// drainEnded records that d's pump ended: nothing is left to wait for.
func (r *keepRing) drainEnded(d *inputDrain) {
	r.mu.Lock()
	d.ended = true
	if i := slices.Index(r.pending, d); i >= 0 {
		r.pending = slices.Delete(r.pending, i, i+1)
	}
	r.mu.Unlock()
	close(d.done)
}

// endStream marks a's stream as ended, which stops its sender; the
// attachment itself is left for the stream's cleanup to detach.
func (r *keepRing) endStream(a *attachment) {
	r.mu.Lock()
	a.ended = true
	r.stopAttachment(a, r.drains(a))
	r.cond.Broadcast()
	r.mu.Unlock()
}

// serves reports whether a is the ring's attachment.
func (r *keepRing) serves(a *attachment) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.att == a && !a.ended
}

// close stops the reader and the attachment for good.
func (r *keepRing) close() {
	r.mu.Lock()
	r.closed = true
	r.dropAttachment(false)
	r.cond.Broadcast()
	r.mu.Unlock()
}

// sendEvent is what next hands the sender.
type sendEvent int

const (
	// sendOutput: a frame of output to send.
	sendOutput sendEvent = iota
	// sendExit: every byte is sent and the exit status is known.
	sendExit
	// sendFailed: every byte is sent and the PTY's Read or Wait failed.
	sendFailed
	// sendStop: the attachment no longer serves the session: its stream
	// ended or another took over.
	sendStop
	// sendClosed: the session was closed.
	sendClosed
)

// next waits for something for a's sender to do. With sendOutput it copies
// up to MaxFrameSize bytes from a's cursor into spare (grown as needed) and
// returns them, moving the cursor past them: the ring may overwrite them
// from then on, they are the sender's. With sendExit or sendFailed, st and
// err say how the session ended. Bytes read before the end always come
// first.
func (r *keepRing) next(a *attachment, spare []byte) (frame []byte, ev sendEvent, st ExitStatus, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a.inFlight = false // the sender is back: its last frame is written
	for {
		switch {
		case r.closed:
			return nil, sendClosed, ExitStatus{}, nil
		case r.att != a || a.ended:
			return nil, sendStop, ExitStatus{}, nil
		case a.cursor < r.bytes.End():
			n := int(min(r.bytes.End()-a.cursor, MaxFrameSize))
			if cap(spare) < n {
				spare = make([]byte, n)
			}
			// The attachment's bytes are never overwritten (write), so
			// they are all there.
			frame = spare[:n]
			r.bytes.Read(frame, a.cursor)
			a.cursor += int64(n)
			a.inFlight = true
			r.cond.Broadcast() // the reader may wait for room
			return frame, sendOutput, ExitStatus{}, nil
		case r.readDone && !errors.Is(r.readErr, io.EOF):
			return nil, sendFailed, ExitStatus{}, r.readErr
		case r.exited && r.waitErr != nil:
			return nil, sendFailed, ExitStatus{}, r.waitErr
		case r.exited:
			return nil, sendExit, r.exit, nil
		}
		r.cond.Wait()
	}
}

// kept describes the ring for Sessions.
func (r *keepRing) kept() (start, end int64, attached bool, exit *ExitStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.exited && r.waitErr == nil {
		st := r.exit
		exit = &st
	}
	return r.bytes.Start(), r.bytes.End(), r.att != nil, exit
}

// hasExited reports whether the PTY's Wait returned.
func (r *keepRing) hasExited() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exited
}
