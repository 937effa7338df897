package shared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// serverSession is one session on the plugin's side of the wire.
type serverSession struct {
	id string
	// ready is closed once pty is set; until then the id is only reserved.
	ready chan struct{}
	pty   PTY

	// lifeMu keeps Kill calls out of Close: kill holds it shared, close
	// exclusively, so the PTY never sees a Kill after its Close.
	lifeMu sync.RWMutex
	// inputMu serializes input (Write, Resize) with close, so no input
	// reaches a closed PTY.
	inputMu sync.Mutex
	// closed is set, and closeErr written, holding both locks.
	closed   atomic.Bool
	closeErr error
}

// input runs fn with the PTY unless the session was closed.
func (s *serverSession) input(fn func(PTY) error) error {
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	if s.closed.Load() {
		return errSessionClosed
	}
	return fn(s.pty)
}

// kill kills the PTY unless the session was closed.
func (s *serverSession) kill(ctx context.Context) error {
	s.lifeMu.RLock()
	defer s.lifeMu.RUnlock()
	if s.closed.Load() {
		return fmt.Errorf("session %q: %w", s.id, ErrSessionNotFound)
	}
	return s.pty.Kill(ctx)
}

// close closes the PTY once and returns that Close's error every time. With
// kill, or if an input call holds inputMu (a Write blocked on a child that
// does not read), it kills the PTY first, which also makes that Write return.
func (s *serverSession) close(ctx context.Context, kill bool) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed.Load() {
		return s.closeErr
	}
	if kill || !s.inputMu.TryLock() {
		_ = s.pty.Kill(ctx)
		s.inputMu.Lock()
	}
	defer s.inputMu.Unlock()
	s.closeErr = s.pty.Close()
	s.closed.Store(true)
	return s.closeErr
}

// pumpInput applies the host's input and resize frames until the stream
// ends. Failures are logged, not fatal: a Write to a session whose child has
// exited fails, and the host cannot act on that anyway.
func (s *serverSession) pumpInput(ctx context.Context, stream proto.Environment_SessionServer, log hclog.Logger) {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return // the stream is over (host gone, closed, or EOF)
		}
		switch f := msg.GetFrame().(type) {
		case *proto.SessionRequest_Input:
			err = s.input(func(p PTY) error {
				_, err := p.Write(f.Input)
				return err
			})
		case *proto.SessionRequest_Resize:
			err = s.input(func(p PTY) error { return p.Resize(ctx, sizeFromProto(f.Resize)) })
		default:
			log.Warn("unexpected session frame ignored", "frame", msg.String())
		}
		if err != nil {
			log.Debug("session input failed", "error", err)
		}
	}
}

// pumpOutput sends the PTY's output up the stream and then the exit frame.
//
// One goroutine reads the PTY with a MaxFrameSize buffer into a pending
// buffer; this goroutine sends whatever has accumulated as one frame. Under
// load the reader fills the pending buffer while a frame is in flight, so
// frames coalesce up to MaxFrameSize; when idle a single echoed keystroke is
// sent as soon as it is read. No timers are involved.
func (s *serverSession) pumpOutput(ctx context.Context, stream proto.Environment_SessionServer) error {
	p := newOutputBuffer()
	stop := context.AfterFunc(ctx, p.stop)
	defer stop()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		p.readFrom(s.pty)
	}()
	defer func() {
		p.stop()
		select {
		case <-readerDone:
		case <-ctx.Done():
			// The reader may be blocked in Read until the deferred close
			// in Session closes the PTY; it exits then, as p is stopped.
		}
	}()

	out := &proto.SessionResponse_Output{}
	msg := &proto.SessionResponse{Frame: out}
	var spare []byte
	for {
		frame, readErr, ok := p.next(spare)
		if !ok {
			return ctx.Err()
		}
		if frame == nil {
			if !errors.Is(readErr, io.EOF) {
				return toStatus(readErr)
			}
			break
		}
		out.Output = frame
		// Send marshals msg before it returns, so frame can be reused.
		if err := stream.Send(msg); err != nil {
			return err
		}
		spare = frame
	}

	st, err := s.pty.Wait(ctx)
	if err != nil {
		return toStatus(err)
	}
	return stream.Send(&proto.SessionResponse{Frame: &proto.SessionResponse_Exit{Exit: &proto.Exit{
		Code:   int32(st.Code),
		Signal: st.Signal,
		Reason: st.Reason,
	}}})
}

// outputBuffer hands output from the PTY reader to the stream sender.
type outputBuffer struct {
	mu   sync.Mutex
	cond sync.Cond
	// mu protects the following.
	pending []byte // read, not yet sent; at most MaxFrameSize
	readErr error  // why the reader stopped; io.EOF at the normal end
	stopped bool   // the sender gave up; the reader must stop too
}

func newOutputBuffer() *outputBuffer {
	b := &outputBuffer{}
	b.cond.L = &b.mu
	return b
}

// readFrom reads r until it fails or the buffer is stopped.
func (b *outputBuffer) readFrom(r io.Reader) {
	buf := make([]byte, MaxFrameSize)
	for {
		n, err := r.Read(buf)
		if n > 0 && !b.put(buf[:n]) {
			return
		}
		if err != nil {
			b.mu.Lock()
			b.readErr = err
			b.cond.Broadcast()
			b.mu.Unlock()
			return
		}
	}
}

// put appends data to the pending bytes, waiting while that would make a
// frame larger than MaxFrameSize. It reports false if the buffer was stopped.
func (b *outputBuffer) put(data []byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) > 0 && len(b.pending)+len(data) > MaxFrameSize && !b.stopped {
		b.cond.Wait()
	}
	if b.stopped {
		return false
	}
	b.pending = append(b.pending, data...)
	b.cond.Broadcast()
	return true
}

// next waits for output and returns all pending bytes as one frame, giving
// the reader spare (the previous frame, already sent) to fill next. With no
// output left it returns the reader's error instead. ok is false once the
// buffer is stopped.
func (b *outputBuffer) next(spare []byte) (frame []byte, readErr error, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.pending) == 0 && b.readErr == nil && !b.stopped {
		b.cond.Wait()
	}
	switch {
	case b.stopped:
		return nil, nil, false
	case len(b.pending) > 0:
		frame, b.pending = b.pending, spare[:0]
		b.cond.Broadcast() // the reader may be waiting for room
		return frame, nil, true
	default:
		return nil, b.readErr, true
	}
}

// stop wakes and ends both sides.
func (b *outputBuffer) stop() {
	b.mu.Lock()
	b.stopped = true
	b.cond.Broadcast()
	b.mu.Unlock()
}
