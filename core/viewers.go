package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// This file holds what a session's clients may do besides reading its
// output: attach read-only, be refused past a client limit, and ask for a
// terminal size under the session's size policy.

var (
	// ErrReadOnly: a read-only attachment (AttachRead) may not write input
	// or resize the terminal.
	ErrReadOnly = errors.New("the client attached read-only")
	// ErrTooManyClients: the session has as many clients attached as its
	// limit allows (CreateOptions.MaxClients, else Options.MaxClients).
	// The HTTP API answers 409.
	ErrTooManyClients = errors.New("the session has too many clients")
)

// AttachMode says what an attached client may do.
type AttachMode uint8

const (
	// AttachWrite: output, input and resize. The default.
	AttachWrite AttachMode = iota
	// AttachRead: output, resizes and the exit only. Write and Resize
	// return ErrReadOnly; the client's size counts for no size policy.
	AttachRead
)

// AttachOptions describe how a client attaches (AttachWith).
type AttachOptions struct {
	// Mode is AttachWrite (zero) or AttachRead.
	Mode AttachMode
	// Resume, when set, resumes at the absolute output offset Offset, as
	// AttachFrom does; otherwise the client gets Attach's replay.
	Resume bool
	Offset int64
	// Epoch, when set with Resume, is the Hello.Epoch of the connection
	// the client resumes: if the session under the id is not that one
	// (it was created again meanwhile), Offset counts for nothing and
	// the client gets FrameReset and the replay, as for an offset the
	// ring no longer holds.
	Epoch string
}

// SizePolicy says which size a session's terminal takes when several
// clients ask for different ones. Every client's last asked size (its
// latest resize) is kept while it stays attached; when a client leaves,
// the terminal returns to the size the remaining clients ask for. A
// client that never asked, or attached read-only, does not count; with no
// such client left, the size stays as it is.
type SizePolicy string

const (
	// SizeLatest: the size last asked for by a client still attached. The
	// default (the zero value means it too).
	SizeLatest SizePolicy = "latest"
	// SizeSmallest: the smallest columns and the smallest rows any
	// attached client asks for, so that every client sees the whole
	// screen, as tmux's window-size smallest.
	SizeSmallest SizePolicy = "smallest"
)

// ParseSizePolicy reads a size policy's name: "latest" or "smallest" (""
// is latest). Anything else is ErrInvalidArgument.
func ParseSizePolicy(s string) (SizePolicy, error) {
	switch p := SizePolicy(s); p {
	case "", SizeLatest:
		return SizeLatest, nil
	case SizeSmallest:
		return p, nil
	}
	return "", fmt.Errorf("%w: size policy %q: want latest or smallest", ErrInvalidArgument, s)
}

// AttachWith attaches a client as opts say: Attach, AttachFrom, and
// read-only attachment. A session that has as many clients as its limit
// (CreateOptions.MaxClients, else Options.MaxClients) already is
// ErrTooManyClients, but for a writer when a viewer holds a place: the
// viewer that attached last is closed with CloseTryAgainLater and
// wsproto.CloseReasonDisplaced, and the writer takes its place
// (displaceViewer).
func (m *Manager) AttachWith(ctx context.Context, id string, opts AttachOptions) (*Attachment, error) {
	off := int64(-1)
	if opts.Resume {
		if opts.Offset < 0 {
			return nil, fmt.Errorf("%w: offset %d is negative", ErrInvalidArgument, opts.Offset)
		}
		off = opts.Offset
	}
	if opts.Mode != AttachWrite && opts.Mode != AttachRead {
		return nil, fmt.Errorf("%w: attach mode %d", ErrInvalidArgument, opts.Mode)
	}
	return m.attach(ctx, id, off, opts.Epoch, opts.Mode)
}

// ReadOnly reports whether the client attached read-only (AttachRead).
func (a *Attachment) ReadOnly() bool { return a.readOnly }

// tooManyClients returns ErrTooManyClients when s, with n clients, may take
// no more under the limit max (0 is none).
func tooManyClients(id string, n, max int) error {
	if max > 0 && n >= max {
		clients := "clients"
		if n == 1 {
			clients = "client"
		}
		return fmt.Errorf("%w: session %q has %d %s attached, the most it allows (max clients %d)", ErrTooManyClients, id, n, clients, max)
	}
	return nil
}

// admits returns ErrTooManyClients when s may take no more clients in mode
// under its limit (maxClients with def, the server's). A writer is turned
// away only when every place is a writer's: the viewers give way to it
// (displaceViewer), so that holders of the read-only token cannot keep
// the session's writers out. Viewers already displaced, which are on
// their way out, hold no place. s.mu must be held.
func (s *session) admits(mode AttachMode, def int) error {
	max := s.maxClients(def)
	err := tooManyClients(s.id, len(s.attachments)-s.displaced, max)
	if err == nil || mode == AttachRead || s.writers >= max {
		return err
	}
	return nil
}

// displaceViewer makes room for a writer in s, if s is full: it ends the
// viewer that attached last with CloseTryAgainLater and
// wsproto.CloseReasonDisplaced. s.mu must be held, and admits must have let
// the writer in.
func (s *session) displaceViewer(def int) {
	max := s.maxClients(def)
	if max <= 0 || len(s.attachments)-s.displaced < max {
		return
	}
	var last *Attachment
	for a := range s.attachments {
		if a.readOnly && !a.displaced && !a.closed && (last == nil || a.seq > last.seq) {
			last = a
		}
	}
	if last == nil {
		return
	}
	last.displaced = true
	s.displaced++
	s.deps.metrics.displaced.Inc()
	last.wake()
}

// maxClients returns s's client limit: its own (CreateOptions.MaxClients),
// else def, the server's. s.mu must be held.
func (s *session) maxClients(def int) int {
	if s.rec.MaxClients > 0 {
		return s.rec.MaxClients
	}
	return def
}

// sizePolicy returns s's size policy: its own (CreateOptions.SizePolicy),
// else def, the server's. s.mu must be held.
func (s *session) sizePolicy(def SizePolicy) SizePolicy {
	if s.rec.SizePolicy != "" {
		return s.rec.SizePolicy
	}
	return def
}

// askSize records size as a's asked size, the newest of the session's.
// s.mu must be held.
func (a *Attachment) askSize(size shared.Size) {
	var seq uint64
	for o := range a.s.attachments {
		seq = max(seq, o.askedSeq)
	}
	a.asked, a.askedSeq = size, seq+1
}

// wantedSize returns the size s's clients ask for under policy, and false
// when none asks. s.mu must be held.
func (s *session) wantedSize(policy SizePolicy) (shared.Size, bool) {
	var (
		want   shared.Size
		newest uint64
		found  bool
	)
	for a := range s.attachments {
		if a.askedSeq == 0 || a.closed {
			continue
		}
		switch {
		case policy == SizeSmallest && found:
			want.Cols, want.Rows = min(want.Cols, a.asked.Cols), min(want.Rows, a.asked.Rows)
		case policy == SizeSmallest || a.askedSeq > newest:
			want, newest = a.asked, a.askedSeq
		}
		found = true
	}
	return want, found
}

// resize changes the terminal's size and tells every attachment.
func (s *session) resize(ctx context.Context, size shared.Size) error {
	s.mu.Lock()
	if s.state != stateRunning {
		s.mu.Unlock()
		return ErrNotRunning
	}
	s.mu.Unlock()
	// A resize goes in order with the input, behind one the program has
	// not read yet: it waits as long as input does. It holds the input's
	// slot until the size is recorded, so that of two resizes at once the
	// one the terminal got last is the one recorded last, and followClients
	// sees the terminal's real size.
	rctx, cancel := context.WithTimeoutCause(ctx, inputWait, ErrInputBlocked)
	defer cancel()
	blocked := func(err error) error {
		if ctx.Err() == nil && context.Cause(rctx) == ErrInputBlocked {
			return fmt.Errorf("the size was not set: %w", ErrInputBlocked)
		}
		return err
	}
	select {
	case s.inputSlot <- struct{}{}:
	case <-rctx.Done():
		return blocked(rctx.Err())
	}
	defer func() { <-s.inputSlot }()
	if err := s.pty.Resize(rctx, size); err != nil {
		return blocked(err)
	}
	cols, rows := int(size.Cols), int(size.Rows)
	if s.recorder != nil {
		// At once: before the output the program redraws at the new size.
		s.recorder.resize(cols, rows)
	}
	s.mu.Lock()
	s.rec.Cols, s.rec.Rows = cols, rows
	for a := range s.attachments {
		a.sizeChanged = true
	}
	s.wakeAll()
	s.mu.Unlock()
	s.changed(SessionUpdate{Cols: &cols, Rows: &rows})
	return nil
}

// followClients gives s's terminal the size its clients ask for under
// policy. With echo, every client is told the size even when it does not
// change (a client gets its own resize back). Should another client ask
// for a size while the plugin resizes, the loop follows it, so that the
// terminal ends at the size the clients ask for last.
func (s *session) followClients(ctx context.Context, policy SizePolicy, echo bool) error {
	for range 8 {
		s.mu.Lock()
		want, ok := s.wantedSize(policy)
		cur := shared.Size{Cols: uint16(s.rec.Cols), Rows: uint16(s.rec.Rows)}
		stop := s.state != stateRunning || s.detached
		s.mu.Unlock()
		if stop {
			return ErrNotRunning
		}
		if !ok || (want == cur && !echo) {
			return nil
		}
		if err := s.resize(ctx, want); err != nil {
			return err
		}
		echo = false
	}
	return nil
}

// resizeTimeout bounds the resize a leaving client causes: Close must not
// hang on a plugin that does not answer.
const resizeTimeout = 5 * time.Second

// sizeAfterLeave returns s's terminal to the size its remaining clients
// ask for, after a client that had asked for one left.
func (m *Manager) sizeAfterLeave(s *session, policy SizePolicy) {
	ctx, cancel := context.WithTimeout(m.ctx, resizeTimeout)
	defer cancel()
	if err := s.followClients(ctx, policy, false); err != nil && !errors.Is(err, ErrNotRunning) {
		s.log.Warn("resizing to the remaining clients' size failed", "err", err)
	}
}
