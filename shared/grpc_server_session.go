package shared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// serverSession is one session on the plugin's side of the wire. From its
// spawn on, one reader goroutine (read) reads its PTY into out, whether or
// not a session stream serves it; a stream sends from out (pumpOutput).
type serverSession struct {
	id              string
	environmentID   string
	environmentType string
	// ready is closed once pty is set and the reader runs; until then the
	// id is only reserved.
	ready chan struct{}
	pty   PTY
	// out keeps the session's output, its end, and the stream serving it.
	out *keepRing
	// ctx ends when the session is closed; the reader's Wait uses it.
	ctx    context.Context
	cancel context.CancelFunc

	// lifeMu keeps Kill calls out of Close: kill holds it shared, close
	// exclusively, so the PTY never sees a Kill after its Close.
	lifeMu sync.RWMutex
	// inputMu serializes input (Write, Resize) with close, so no input
	// reaches a closed PTY.
	inputMu sync.Mutex
	// closed is set, and closeErr written, holding both locks.
	closed   atomic.Bool
	closeErr error
	// resizeWarned: a refused resize was logged as a warning; later ones
	// are debug lines, so that a client resizing on and on does not fill
	// the host's log.
	resizeWarned atomic.Bool
	// abandoned is set, under the server's mu, by a Close that came while
	// the session was still spawning: the spawn then undoes itself.
	abandoned bool
	// turns bounds how long an attachment's input waits for the input
	// of those before it (waitTurn).
	turns turnConfig
}

// newServerSession returns a session reserved for req, whose output the
// SDK keeps in scrollback bytes from req.OutputOffset.
func newServerSession(req SpawnRequest, scrollback int) *serverSession {
	ctx, cancel := context.WithCancel(context.Background())
	return &serverSession{
		id:              req.SessionID,
		environmentID:   req.EnvironmentID,
		environmentType: req.EnvironmentType,
		ready:           make(chan struct{}),
		out:             newKeepRing(scrollback, req.OutputOffset),
		ctx:             ctx,
		cancel:          cancel,
		turns:           turnConfig{wait: takeoverInputWait},
	}
}

// start takes up pty, attaches the spawning stream from the first byte, and
// starts the reader. The attachment comes first so that no byte is
// overwritten before that stream has sent it.
func (s *serverSession) start(pty PTY) *attachment {
	s.pty = pty
	a, _ := s.out.attach(0) // clamped to the first offset
	go s.read()
	return a
}

// read reads the PTY into out until its output ends or the session is
// closed, then waits for the exit status, once, and keeps it in out.
//
// It copies what it reads into the ring: the one copy the SDK adds for
// keeping output. Its buffer starts small, so that an idle session holds
// little, and becomes MaxFrameSize, what a frame carries, the first time a
// read fills it.
func (s *serverSession) read() {
	buf := make([]byte, readStartBufferSize)
	for {
		n, err := s.pty.Read(buf)
		if n > 0 && !s.out.write(buf[:n]) {
			return // closed
		}
		if n == len(buf) && n < MaxFrameSize {
			buf = make([]byte, MaxFrameSize)
		}
		if err != nil {
			s.out.readEnded(err)
			if errors.Is(err, io.EOF) {
				st, err := s.pty.Wait(s.ctx)
				s.out.exitedWith(st, err)
			}
			return
		}
	}
}

// directInput returns the terminal a host that asked (direct_input) may
// write the session's input to, if the PTY says it may (InputTerminal);
// else nil, and input stays frames.
func (s *serverSession) directInput(asked bool) *os.File {
	if !asked {
		return nil
	}
	return terminalInput(s.pty)
}

// readStartBufferSize is the read buffer a session starts with.
const readStartBufferSize = 1 << 10

// input runs fn with the PTY unless the session was closed or d, the
// drain the input comes from if any, was cut (errInputCut).
func (s *serverSession) input(d *inputDrain, fn func(PTY) error) error {
	s.inputMu.Lock()
	defer s.inputMu.Unlock()
	if s.closed.Load() {
		return errSessionClosed
	}
	if d != nil && d.isCut() {
		return errInputCut
	}
	return fn(s.pty)
}

// resizeTimeout bounds the PTY's Resize. Its context is the session's,
// not the stream's that brought the size: a resize the host wrote before
// it went is applied after the stream ended (inputSource, inputDrain), and
// a PTY whose Resize asks a daemon (DOCKER's) would fail at once with the
// stream's ended context. The bound keeps a Resize that does not return
// from holding the session's input, which waits behind it, for ever.
const resizeTimeout = 10 * time.Second

// resize resizes the PTY unless the session was closed or d was cut, as
// input does. The host sent
// the size in order with the input and does not wait for an answer, so a
// PTY's failure to take it is logged here, as a warning the host's log
// shows under the plugin's name (the session's first; later ones at debug
// level), and returns nil; the session goes on at its old size.
func (s *serverSession) resize(d *inputDrain, size Size, log hclog.Logger) error {
	err := s.input(d, func(p PTY) error {
		ctx, cancel := context.WithTimeout(s.ctx, resizeTimeout)
		defer cancel()
		return p.Resize(ctx, size)
	})
	if err == nil || errors.Is(err, errSessionClosed) || errors.Is(err, errInputCut) {
		return err
	}
	logf := log.Debug
	if s.resizeWarned.CompareAndSwap(false, true) {
		logf = log.Warn
	}
	logf("the session's PTY refused a resize; it keeps its size", "cols", size.Cols, "rows", size.Rows, "error", err)
	return nil
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
// does not read, a Resize), it kills the PTY first, which also makes that
// Write return, and ends the session's context, which ends the Resize.
// The reader and any stream's sender stop first: nobody wants the output of
// a closed session.
func (s *serverSession) close(ctx context.Context, kill bool) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed.Load() {
		return s.closeErr
	}
	s.out.close()
	if kill || !s.inputMu.TryLock() {
		_ = s.pty.Kill(ctx)
		// A Resize under way holds inputMu too, and its context is the
		// session's (resize): end it now, not at its own bound.
		s.cancel()
		s.inputMu.Lock()
	}
	defer s.inputMu.Unlock()
	s.closeErr = s.pty.Close()
	s.closed.Store(true)
	s.cancel()
	return s.closeErr
}

// pumpInput applies the input and resize frames of a's stream until the
// stream ends, after the input of the attachments before it that the
// plugin still applies (waitTurn). Frames received once a no longer
// serves the session are dropped: after another stream took it over, and
// also after the stream merely ended; so is a frame that waited
// (waitTurn) while a stopped serving, as the input of the attachment
// after a does not wait for it. Unlike a byte channel's (inputSource),
// what the host sent just before it went cannot be drained here: once the
// stream's context has ended, gRPC's Recv picks at random between the
// next buffered frame and the context's error
// (TestStreamFramesBufferedAtTheHostsEndAreLost), and applying a random
// part of them is no better than none. Failures are logged, not fatal: a
// Write to a session whose child has exited fails, and the host cannot
// act on that anyway.
func (s *serverSession) pumpInput(stream proto.Environment_SessionServer, a *attachment, log hclog.Logger) {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return // the stream is over (host gone, closed, or EOF)
		}
		if !s.out.serves(a) {
			continue
		}
		if s.waitTurn(a, nil) && !s.out.serves(a) {
			// It stopped serving while the frame waited: a later
			// attachment's input, which does not wait for this
			// frame, may have been applied already.
			continue
		}
		switch f := msg.GetFrame().(type) {
		case *proto.SessionRequest_Input:
			err = s.input(nil, func(p PTY) error {
				_, err := p.Write(f.Input)
				return err
			})
		case *proto.SessionRequest_Resize:
			err = s.resize(nil, sizeFromProto(f.Resize), log)
		default:
			log.Warn("unexpected session frame ignored", "frame", msg.String())
		}
		if err != nil {
			log.Debug("session input failed", "error", err)
		}
	}
}

// errTakenOver ends a session stream whose session another stream attached
// to.
var errTakenOver = fmt.Errorf("%w: another session stream took the session over", ErrUnavailable)

// pumpOutput sends the session's output from a's cursor up the stream,
// then the exit frame. It returns nil once the exit frame is sent, and an
// error if the stream ended, another stream took the session over, or the
// PTY failed.
//
// The session's reader fills the ring while a frame is in flight, so under
// load frames coalesce up to MaxFrameSize; when idle a single echoed
// keystroke is sent as soon as it is read. No timers are involved.
func (s *serverSession) pumpOutput(ctx context.Context, stream proto.Environment_SessionServer, a *attachment) error {
	out := &proto.SessionResponse_Output{}
	msg := &proto.SessionResponse{Frame: out}
	var spare []byte
	for {
		frame, ev, st, err := s.out.next(a, spare)
		switch ev {
		case sendOutput:
			out.Output = frame
			// Send marshals msg before it returns, so frame can be reused.
			if err := stream.Send(msg); err != nil {
				return err
			}
			spare = frame
		case sendExit:
			return stream.Send(&proto.SessionResponse{Frame: &proto.SessionResponse_Exit{Exit: exitToProto(st)}})
		default:
			return stopped(ctx, ev, err, nil)
		}
	}
}

// stopped is the error a sender returns for an event that ends its
// stream other than by the exit frame: sendFailed (err), sendClosed, or
// sendStop (the stream's context ended, the host broke the byte channel
// with inErr, or another stream took over).
func stopped(ctx context.Context, ev sendEvent, err, inErr error) error {
	switch ev {
	case sendFailed:
		return toStatus(err)
	case sendClosed:
		return toStatus(errSessionClosed)
	}
	// Before ctx's end: a released stream's context ends because the
	// channel's input broke.
	if inErr != nil {
		return toStatus(channelError(inErr))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return toStatus(errTakenOver)
}

// exitToProto converts an exit status for the wire, its text within what
// the host keeps (cleanExit), so that no exit frame, nor the list of kept
// sessions, grows with an adapter's long reason.
func exitToProto(st ExitStatus) *proto.Exit {
	st = cleanExit(st)
	return &proto.Exit{Code: int32(st.Code), Signal: st.Signal, Reason: st.Reason}
}
