package shared

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ptyhost/ptyhost/internal/rawio"
	"github.com/ptyhost/ptyhost/shared/proto"
)

// takeChannel waits for the host's byte_channel frame, which follows a
// Started frame that offered a channel, and returns the connection the
// host opened, or nil if it opened none (the stream then carries the
// bytes). Any other frame is the host breaking the protocol.
func (s *GRPCServer) takeChannel(ctx context.Context, stream proto.Environment_SessionServer, offer *channelOffer) (*net.UnixConn, error) {
	msg, err := stream.Recv()
	if err != nil {
		s.channels.withdraw(offer)
		return nil, err
	}
	bc := msg.GetByteChannel()
	if bc == nil {
		s.channels.withdraw(offer)
		return nil, toStatus(fmt.Errorf("%w: after a byte channel offer the host's frame must be byte_channel, not %T",
			ErrInvalidArgument, msg.GetFrame()))
	}
	if !bc.GetOpened() {
		s.channels.withdraw(offer)
		return nil, nil
	}
	// The host read the acknowledgement, which the handshake writes just
	// before it hands the connection over: it is there or about to be.
	t := time.NewTimer(channelHandshakeTimeout)
	defer t.Stop()
	select {
	case conn := <-offer.conn:
		return conn, nil
	case <-ctx.Done():
		s.channels.withdraw(offer)
		return nil, ctx.Err()
	case <-t.C:
		s.channels.withdraw(offer)
		return nil, toStatus(fmt.Errorf("%w: the host said it opened the byte channel, which never came", ErrInvalidArgument))
	}
}

// serveChannel pumps a session on its byte channel: output up the channel
// and then the exit (exitTo: the exit frame up the stream, or kept for
// SessionEnd), input and resizes down the channel. Closing the channel is
// how its two pumps stop when the attachment stops serving the session
// (taken over, detached, closed, or the stream ended). After the exit it
// keeps serving as serve does, until the host closes the channel too.
//
// stopped, if not nil, runs (once, without blocking) when the attachment
// stops serving.
func (s *serverSession) serveChannel(ctx context.Context, exitTo func(*proto.Exit) error, a *attachment, conn *net.UnixConn, stopped func(), log hclog.Logger) error {
	fd := rawio.New(conn) // nil: conn is written the usual way
	in := &inputSource{conn: conn, fd: fd}
	// The input pump closes the connection once it has read what the
	// host wrote (inputSource).
	defer in.stop(true)
	var inErr atomic.Pointer[error]
	inDone := make(chan struct{})
	d := newInputDrain()
	s.out.onStop(a, func(drain bool) {
		in.stop(drain)
		if stopped != nil {
			stopped()
		}
	}, writeNow(fd), d)
	go func() {
		defer close(inDone)
		defer s.out.drainEnded(d)
		defer conn.Close()
		s.pumpChannelInput(ctx, in, a, d, &inErr, log)
	}()
	if err := s.pumpChannelOutput(ctx, exitTo, conn, fd, a, &inErr); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-a.gone:
	case <-inDone:
	}
	return nil
}

// streamExit returns an exitTo that sends the exit frame on stream.
func streamExit(stream proto.Environment_SessionServer) func(*proto.Exit) error {
	return func(e *proto.Exit) error {
		return stream.Send(&proto.SessionResponse{Frame: &proto.SessionResponse_Exit{Exit: e}})
	}
}

// inputReadSize is the buffer a channel's input frames are read through:
// enough for a typed key's frame or a resize's; a paste's payload is read
// past it, straight into its frame buffer.
const inputReadSize = 64

// pumpChannelInput applies the input and resize frames the host writes on
// the channel, after the input of the attachments before it that the
// plugin still applies (waitTurn), until the channel is closed, or, once
// the attachment stopped serving the session, until it has read what the
// host wrote before (see inputSource): a session detached or taken over
// gets that input still, unless a later attachment's input waited too
// long for it (d is cut) or the session was closed. If it breaks while
// the attachment still serves the session (the host closed it without
// ending the stream, or wrote nonsense), the attachment's stream ends,
// with inErr saying why.
func (s *serverSession) pumpChannelInput(ctx context.Context, in *inputSource, a *attachment, d *inputDrain, inErr *atomic.Pointer[error], log hclog.Logger) {
	var buf []byte
	// What a cut dropped.
	var droppedBytes, droppedResizes int
	defer func() {
		if droppedBytes > 0 || droppedResizes > 0 {
			log.Warn("input the session's previous host wrote was still not applied when the next host's input had waited for it; the rest was dropped",
				"input_bytes", droppedBytes, "resizes", droppedResizes, "waited", s.turns.wait.String())
		}
	}()
	// A keystroke's frame, header and byte, in one read.
	br := bufio.NewReaderSize(in, inputReadSize)
	for {
		typ, payload, grown, err := readInputFrame(br, buf)
		buf = grown
		if err != nil {
			if ctx.Err() == nil && s.out.serves(a) {
				log.Debug("byte channel input ended", "error", err)
				inErr.Store(&err)
				s.out.endStream(a)
			}
			return
		}
		s.waitTurn(a, d)
		switch typ {
		case channelInput:
			err = s.input(d, func(p PTY) error {
				_, err := p.Write(payload)
				return err
			})
			if errors.Is(err, errInputCut) {
				droppedBytes += len(payload)
			}
		case channelResize:
			size := sizeFromPayload(payload)
			err = s.resize(d, size, log)
			if errors.Is(err, errInputCut) {
				droppedResizes++
			}
		}
		if err != nil && !errors.Is(err, errInputCut) {
			log.Debug("session input failed", "error", err)
		}
		if cap(buf) > readStartBufferSize {
			buf = nil // an idle session keeps no large buffer after a paste
		}
	}
}

// writeNow returns a function that writes as much of p to the channel fd
// as it takes without waiting (one write system call) and returns how
// much that was: 0 if the socket is full or closed. Nil if fd is.
func writeNow(fd *rawio.FD) func(p []byte) int {
	if fd == nil {
		return nil
	}
	return func(p []byte) int {
		n, _ := fd.WriteNow(p)
		return max(n, 0)
	}
}

// pumpChannelOutput writes the session's output from a's cursor on the
// channel, then shuts the channel's writing down and hands the exit to
// exitTo. It returns nil once the exit is handed on, and an error as
// pumpOutput does; a broken channel is ErrUnavailable.
func (s *serverSession) pumpChannelOutput(ctx context.Context, exitTo func(*proto.Exit) error, conn *net.UnixConn, fd *rawio.FD, a *attachment, inErr *atomic.Pointer[error]) error {
	var out io.Writer = conn
	if fd != nil {
		out = fd
	}
	var spare []byte
	for {
		frame, ev, st, err := s.out.next(a, spare)
		switch ev {
		case sendOutput:
			if _, err := out.Write(frame); err != nil {
				return s.channelBroke(ctx, a, err)
			}
			spare = frame
		case sendExit:
			if err := conn.CloseWrite(); err != nil {
				return s.channelBroke(ctx, a, err)
			}
			return exitTo(exitToProto(st))
		default:
			var broke error
			if p := inErr.Load(); p != nil {
				broke = *p
			}
			return stopped(ctx, ev, err, broke)
		}
	}
}

// channelBroke says why writing to a's channel failed: the stream ended,
// another stream took over, the session closed (all of which close the
// channel), or the channel itself broke.
func (s *serverSession) channelBroke(ctx context.Context, a *attachment, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case s.closed.Load():
		return toStatus(errSessionClosed)
	case !s.out.serves(a):
		return toStatus(errTakenOver)
	default:
		return toStatus(channelError(err))
	}
}

// channelError wraps an error of the byte channel for the host.
func channelError(err error) error {
	if errors.Is(err, ErrInvalidArgument) {
		return err
	}
	return fmt.Errorf("%w: byte channel broke: %v", ErrUnavailable, err)
}

// serveReleased serves a session whose stream was released to its byte
// channel, conn, whose end is end: as the stream would have
// (serveChannel), with the channel standing for the stream. The host
// closing it ends the attachment as the stream's end would (streamEnded);
// the end the stream would have carried, exit or error, is kept for
// SessionEnd. Its context ends when the attachment stops serving, as the
// stream's did.
func (s *GRPCServer) serveReleased(sess *serverSession, a *attachment, end *channelEnd, conn *net.UnixConn, log hclog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := sess.serveChannel(ctx, func(e *proto.Exit) error {
		end.resolve(e, nil)
		return nil
	}, a, conn, cancel, log)
	end.resolve(nil, err)
	s.streamEnded(ctx, sess, a, log)
	// The host asks at once if at all (it read the channel's end; a
	// host that closed the channel itself never asks): an end nobody
	// asked for goes after endKeep.
	time.AfterFunc(endKeep, func() { s.forgetEnd(end) })
}

// endKeep is how long the end of a released stream is kept for
// SessionEnd once the stream is over.
const endKeep = time.Minute

// SessionEnd implements proto.EnvironmentServer: how the released stream
// whose channel is req's ended, once it is known.
func (s *GRPCServer) SessionEnd(ctx context.Context, req *proto.SessionEndRequest) (*proto.SessionEndResponse, error) {
	id := req.GetSessionId()
	s.mu.Lock()
	end := s.ends[req.GetByteChannelId()]
	s.mu.Unlock()
	if end == nil || end.session != id {
		if _, err := s.lookup(id); err != nil {
			return nil, toStatus(err)
		}
		return nil, toStatus(errTakenOver)
	}
	select {
	case <-end.done:
	case <-ctx.Done():
		return nil, toStatus(ctx.Err())
	}
	s.forgetEnd(end)
	if end.err != nil {
		return nil, toStatus(end.err)
	}
	return &proto.SessionEndResponse{Exit: end.exit}, nil
}

// channelEnd is how a released stream's channel ended: the exit, or the
// error status the stream would have ended with.
type channelEnd struct {
	id      uint64 // the channel's
	session string
	once    sync.Once
	done    chan struct{} // closed once exit or err is set
	exit    *proto.Exit
	err     error
}

// resolve sets the end, once; later calls do nothing.
func (e *channelEnd) resolve(exit *proto.Exit, err error) {
	e.once.Do(func() {
		e.exit, e.err = exit, err
		close(e.done)
	})
}

// openEnd keeps the end of the session's channel id for SessionEnd, until
// it is asked for, the session is closed, or endKeep after the stream is
// over.
func (s *GRPCServer) openEnd(session string, id uint64) *channelEnd {
	e := &channelEnd{id: id, session: session, done: make(chan struct{})}
	s.mu.Lock()
	s.ends[id] = e
	s.mu.Unlock()
	return e
}

// forgetEnd drops e.
func (s *GRPCServer) forgetEnd(e *channelEnd) {
	s.mu.Lock()
	if s.ends[e.id] == e {
		delete(s.ends, e.id)
	}
	s.mu.Unlock()
}

// forgetEnds drops the ends of session's channels: it was closed, and its
// host asks no more.
func (s *GRPCServer) forgetEnds(session string) {
	s.mu.Lock()
	for id, e := range s.ends {
		if e.session == session {
			delete(s.ends, id)
		}
	}
	s.mu.Unlock()
}
