package core

import (
	"context"
	"sync"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/shared"
)

// Attachment is one client attached to a session: a reader of its output at
// its own offset, and a writer of its input. The WebSocket handler holds one
// per connection; an embedder may use them directly.
//
// Next is called from one goroutine; Write and Resize may be called from
// another. Close detaches.
type Attachment struct {
	s     *session
	hello Hello
	wakeC chan struct{}
	// readOnly: attached with AttachRead; Write and Resize refuse.
	readOnly bool
	// policy is the session's size policy, which Resize and leaving apply.
	policy SizePolicy

	closeOnce sync.Once

	// The following are protected by s.mu.
	off         int64
	resetOwed   bool   // a FrameReset is owed before the replay (AttachFrom)
	modes       []byte // mode-restoring bytes owed before the replay
	sizeChanged bool
	notices     []string // error messages owed to the client
	exitSent    bool
	// restartPast is one past the offset of the last restart the client
	// was told of (FrameRestarted); 0: none.
	restartPast int64
	closed      bool
	// seq orders the session's attachments by when they attached;
	// displaced is set on a viewer that gave its place to a writer
	// (session.displaceViewer): it is closed with CloseTryAgainLater.
	seq       uint64
	displaced bool
	// keptUp is when the client last kept up with the pump (flow.go:
	// flowProgress); it starts at its attach. behind is set from when the pump
	// finds the client past its high-water mark until it is back within
	// the low-water mark.
	keptUp   time.Time
	behind   bool
	asked    shared.Size // the size the client last asked for
	askedSeq uint64      // orders the clients' asks; 0: never asked
	// direct is the client's direct writer (direct.go); waiting is set
	// while Next waits with nothing to return; directBusy while the pump
	// writes with direct, when Next must wait; wokenBusy if Next was woken
	// meanwhile, so the pump wakes it again after.
	direct     func([]byte) error
	waiting    bool
	directBusy bool
	wokenBusy  bool
}

// Hello is what a client is told first.
type Hello struct {
	SessionID string
	// Epoch tells this session from another created under the same id
	// before or after it: a client resuming gives it back
	// (AttachOptions.Epoch), so that its offset does not count in another
	// session's output. It stays the same when the session is restarted
	// in place or taken up by the next server.
	Epoch string
	Size  shared.Size
	// Offset is the absolute output offset of the client's first output
	// byte: where the replay starts, or where AttachFrom resumes.
	Offset int64
	// End is the session's output offset when the client attached: the
	// bytes from Offset to End are history (the replay), those after it
	// new output. A client that resumed where the session was has
	// End == Offset.
	End int64
}

// FrameKind says what Next returned.
type FrameKind uint8

// Frame kinds, in the order a client may see them.
const (
	// FrameOutput: terminal output bytes in Data.
	FrameOutput FrameKind = iota + 1
	// FrameResize: the terminal's size changed to Size.
	FrameResize
	// FrameReset: the client fell behind and lost output; it must reset its
	// terminal. The replay from Offset follows.
	FrameReset
	// FrameExit: the process ended (Exit). Every output byte came before.
	FrameExit
	// FrameClose: the attachment is over; close with CloseCode and
	// CloseReason.
	FrameClose
	// FrameError: the client's last message was rejected (Message says
	// why); nothing else changed.
	FrameError
	// FrameModes: escape sequences in Data that take a fresh terminal into
	// the modes in force where the replay begins. They come after the
	// hello or a FrameReset, before the replay's output, and are not
	// output: they take up no offsets.
	FrameModes
	// FrameRestarted: the session's process was restarted in place
	// (Manager.RestartSession); every output byte of the old process came
	// before, and the new process's output follows from Offset. The client
	// stays attached; it may reset its terminal's modes.
	FrameRestarted
)

// Close codes sent to clients, with WebSocket semantics: the protocol's
// (package wsproto).
const (
	CloseNormal       = wsproto.CloseNormal       // session destroyed, or exited
	CloseGoingAway    = wsproto.CloseGoingAway    // server shutting down, ending the session
	CloseRestart      = wsproto.CloseRestart      // server stopping, the session goes on (Detach): reconnect
	ClosePluginFailed = wsproto.ClosePluginFailed // the session's plugin crashed
)

// Close reasons, the protocol's.
const (
	CloseReasonDestroyed = wsproto.CloseReasonDestroyed
	CloseReasonExited    = wsproto.CloseReasonExited
	CloseReasonShutdown  = wsproto.CloseReasonShutdown
	CloseReasonRestart   = wsproto.CloseReasonRestart
)

// Frame is one thing for a client.
type Frame struct {
	Kind   FrameKind
	Data   []byte // FrameOutput, FrameModes: a prefix of the buffer given to Next
	Size   shared.Size
	Offset int64
	// End, of a FrameReset: the session's output offset at the reset. The
	// replay's bytes up to it are history, as Hello.End says.
	End         int64
	Exit        ExitStatus
	CloseCode   int
	CloseReason string
	Message     string
}

// Hello returns what the client must be told first.
func (a *Attachment) Hello() Hello { return a.hello }

func (a *Attachment) wake() {
	select {
	case a.wakeC <- struct{}{}:
	default:
	}
}

// Next blocks until there is something for the client and returns it. Output
// is copied into buf. After a FrameClose, Next returns FrameClose again.
func (a *Attachment) Next(ctx context.Context, buf []byte) (Frame, error) {
	for {
		if f, ok := a.poll(buf); ok {
			return f, nil
		}
		select {
		case <-a.wakeC:
		case <-ctx.Done():
			a.s.mu.Lock()
			a.waiting = false // not waiting in Next any more
			a.s.mu.Unlock()
			return Frame{}, ctx.Err()
		}
	}
}

// poll returns the next frame if one is ready.
func (a *Attachment) poll(buf []byte) (Frame, bool) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if a.directBusy {
		// The pump is writing output to the client: after it.
		a.wokenBusy, a.waiting = true, true
		return Frame{}, false
	}
	f, ok := a.pollLocked(buf)
	a.waiting = !ok
	return f, ok
}

// owesFrame reports whether pollLocked may return something other than
// output first: the states it answers before the ring, and, to be safe, a
// session not running. Keep it in step with pollLocked: the pump's direct
// write (direct.go) relies on it to keep frames in order. s.mu is held.
func (a *Attachment) owesFrame() bool {
	s := a.s
	if a.closed || a.displaced || s.state != stateRunning || len(a.notices) > 0 || a.sizeChanged || a.resetOwed || len(a.modes) > 0 || s.exit != nil {
		return true
	}
	_, restarted := s.restartMark(a.off, a.restartPast-1)
	return restarted
}

// pollLocked is poll's work; s.mu is held. What it answers before the ring
// owesFrame lists too.
func (a *Attachment) pollLocked(buf []byte) (Frame, bool) {
	s := a.s
	switch {
	case a.displaced:
		a.closed = true
		return Frame{Kind: FrameClose, CloseCode: wsproto.CloseTryAgainLater, CloseReason: wsproto.CloseReasonDisplaced}, true
	case a.closed:
		return Frame{Kind: FrameClose, CloseCode: s.closeCode, CloseReason: s.closeReason}, true
	case s.state == stateDestroyed && !s.drain:
		a.closed = true
		return Frame{Kind: FrameClose, CloseCode: s.closeCode, CloseReason: s.closeReason}, true
	case len(a.notices) > 0:
		msg := a.notices[0]
		a.notices = a.notices[1:]
		return Frame{Kind: FrameError, Message: msg}, true
	case a.sizeChanged:
		a.sizeChanged = false
		return Frame{Kind: FrameResize, Size: shared.Size{Cols: uint16(s.rec.Cols), Rows: uint16(s.rec.Rows)}}, true
	case a.resetOwed:
		a.resetOwed = false
		return Frame{Kind: FrameReset, Offset: a.off, End: a.hello.End}, true
	case len(a.modes) > 0:
		// A few dozen bytes; a smaller buf gets them in pieces.
		n := copy(buf, a.modes)
		a.modes = a.modes[n:]
		return Frame{Kind: FrameModes, Data: buf[:n]}, true
	}
	if m, ok := s.restartMark(a.off, a.restartPast-1); ok {
		if m == a.off {
			a.restartPast = m + 1
			return Frame{Kind: FrameRestarted, Offset: m}, true
		}
		// No output across a restart: the old process's first.
		buf = buf[:min(int64(len(buf)), m-a.off)]
	}
	n, ok := s.ring.Read(buf, a.off)
	if !ok {
		// The bytes at our offset are gone: resync at a safe point.
		p := s.ring.replayPoint()
		a.off = p.off
		a.modes = p.modes.preamble()
		s.deps.metrics.resyncs.Inc()
		// Moved forward, a may be within the low-water mark now, with
		// nothing to read (a ring without safe points resyncs to the
		// end): the pump must look again.
		s.flowProgress(a)
		return Frame{Kind: FrameReset, Offset: p.off, End: s.ring.End()}, true
	}
	if n > 0 {
		a.off += int64(n)
		s.flowProgress(a)
		return Frame{Kind: FrameOutput, Data: buf[:n]}, true
	}
	if s.exit != nil {
		if !a.exitSent {
			a.exitSent = true
			return Frame{Kind: FrameExit, Exit: *s.exit}, true
		}
		a.closed = true
		code, reason := CloseNormal, CloseReasonExited
		switch {
		case s.state == stateDestroyed:
			code, reason = s.closeCode, s.closeReason
		case s.exit.Reason == ReasonPluginCrashed:
			code, reason = ClosePluginFailed, wsproto.CloseReasonPluginCrashed
		}
		return Frame{Kind: FrameClose, CloseCode: code, CloseReason: reason}, true
	}
	return Frame{}, false
}

// maxNotices bounds the error messages queued for a client that does not
// read them; later ones are dropped.
const maxNotices = 16

// Reject queues an error message for the client: its last message was not
// accepted. Next returns it as a FrameError.
func (a *Attachment) Reject(msg string) {
	a.s.mu.Lock()
	if len(a.notices) < maxNotices {
		a.notices = append(a.notices, msg)
	}
	a.s.mu.Unlock()
	a.wake()
}

// Write sends input to the session's terminal, after the input any client
// wrote before it, and returns once the terminal took it: it waits while
// the program does not read its input. Input that would wait more than
// 10 s behind earlier input still unwritten is dropped, ErrInputBlocked;
// the write that holds the terminal waits until the program reads or the
// session ends, and Close does not end it (the client is detached all the
// same). A read-only attachment's is ErrReadOnly.
func (a *Attachment) Write(p []byte) (int, error) {
	if a.readOnly {
		return 0, ErrReadOnly
	}
	a.s.mu.Lock()
	running := a.s.state == stateRunning
	if _, attached := a.s.attachments[a]; running && attached {
		a.s.typist = a // of several clients, the one its echo goes to first
	}
	a.s.mu.Unlock()
	if !running {
		return 0, ErrNotRunning
	}
	if err := a.s.input(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Resize asks for a terminal size for this client. The session's size
// policy (SizePolicy) decides the terminal's size from every client's ask;
// every attachment is told the size, even when it did not change. A
// read-only attachment's is ErrReadOnly.
func (a *Attachment) Resize(ctx context.Context, cols, rows int) error {
	if err := validSize(cols, rows); err != nil {
		return err
	}
	if a.readOnly {
		return ErrReadOnly
	}
	s := a.s
	s.mu.Lock()
	if s.state != stateRunning {
		s.mu.Unlock()
		return ErrNotRunning
	}
	a.askSize(shared.Size{Cols: uint16(cols), Rows: uint16(rows)})
	s.mu.Unlock()
	return s.followClients(ctx, a.policy, true)
}

// Close detaches the client. It is safe to call more than once.
func (a *Attachment) Close() {
	a.closeOnce.Do(func() { a.s.deps.detached(a) })
}
