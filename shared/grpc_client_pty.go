package shared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ptyhost/ptyhost/internal/rawio"
	"github.com/ptyhost/ptyhost/shared/proto"
)

// grpcPTY is a session as the host sees it: a PTY backed by a session
// stream, and by a byte channel if the plugin offered one and it could be
// opened. It starts no goroutines: Read reads the channel, or receives
// frames, itself, in the caller's goroutine, so a host that stops reading
// pushes back on the plugin through the socket's or gRPC's flow control.
type grpcPTY struct {
	c  *GRPCClient
	id string
	// stream is the session stream; nil once the plugin released it to
	// the byte channel (then SessionEnd with channelID tells the end).
	stream    proto.Environment_SessionClient
	channelID uint64
	// ch is the byte channel, nil if the stream carries the bytes. It is
	// closed when ctx ends.
	ch *net.UnixConn
	// chFD is ch's descriptor, which Read reads with raw calls; nil:
	// Read reads ch.
	chFD *rawio.FD
	// input is the session's terminal, which the plugin handed over for
	// input (direct_input); nil if input goes as frames. Closed when ctx
	// ends.
	input *directInput
	// ctx is the stream's context; cancel ends the stream.
	ctx    context.Context
	cancel context.CancelCauseFunc

	// sendSlot is a one-slot semaphore around stream.Send, which is not safe
	// for concurrent use. A channel, so waiting for it honours a context.
	sendSlot chan struct{}

	// Read's state, used only by the goroutine calling Read.
	chDone  bool   // the channel's output ended: the stream (or SessionEnd) tells the end
	rest    []byte // the unread rest of the current output frame
	readErr error  // io.EOF after the exit frame, or why the stream broke

	// done is closed when the session's end is known; status and waitErr
	// are written before.
	done    chan struct{}
	status  ExitStatus
	waitErr error

	closeOnce sync.Once
	closeErr  error
	// closing is set as Close begins: the stream may end with the
	// plugin's "session closed" before Close's cancel, and that end is
	// Close's, not a failure.
	closing atomic.Bool
}

var (
	_ PTY      = (*grpcPTY)(nil)
	_ Detacher = (*grpcPTY)(nil)
)

func newGRPCPTY(c *GRPCClient, id string, stream proto.Environment_SessionClient, ctx context.Context, cancel context.CancelCauseFunc, ch *net.UnixConn, input *directInput) *grpcPTY {
	p := &grpcPTY{
		c:        c,
		id:       id,
		stream:   stream,
		ch:       ch,
		input:    input,
		ctx:      ctx,
		cancel:   cancel,
		sendSlot: make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	if ch != nil {
		p.chFD = rawio.New(ch)
		// Closed, detached or the plugin gone: a Read or Write blocked on
		// the channel returns.
		context.AfterFunc(ctx, func() { ch.Close() })
	}
	if input != nil {
		// A Write blocked on a terminal that does not read returns too.
		context.AfterFunc(ctx, input.close)
	}
	return p
}

// ByteChannel reports whether the session's bytes go on a byte channel
// rather than on its stream.
func (p *grpcPTY) ByteChannel() bool { return p.ch != nil }

// UsesByteChannel reports whether p is a plugin's session (from a
// GRPCClient) whose bytes go on a byte channel beside its session stream,
// rather than on the stream: the plugin offered one and the host opened
// it.
//
// A PTY that wraps a plugin's tells by a ByteChannel method of its own.
func UsesByteChannel(p PTY) bool {
	c, ok := p.(interface{ ByteChannel() bool })
	return ok && c.ByteChannel()
}

// readChannel reads the byte channel.
func (p *grpcPTY) readChannel(b []byte) (int, error) {
	if p.chFD != nil {
		return p.chFD.Read(b)
	}
	return p.ch.Read(b)
}

// Read returns output bytes. After the exit frame (or, on a released
// stream, SessionEnd's exit status) it returns io.EOF; if the
// stream breaks first (plugin died, connection lost) it returns an error
// wrapping ErrPluginExited; if the plugin's PTY failed (its Read or Wait
// returned an error), an error with the plugin's message that does not.
// Each result repeats on later calls.
func (p *grpcPTY) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for len(p.rest) == 0 {
		if p.readErr != nil {
			return 0, p.readErr
		}
		if p.ch != nil && !p.chDone {
			n, err := p.readChannel(b)
			if n > 0 {
				return n, nil
			}
			if err != nil {
				// The output ended (io.EOF: the exit frame follows), or
				// the channel broke or was closed: the stream says which.
				p.chDone = true
			}
			continue
		}
		if p.stream == nil {
			p.end(p.sessionEnd())
			continue
		}
		msg, err := p.stream.Recv()
		if err != nil {
			p.end(ExitStatus{}, p.streamError(err))
			continue
		}
		switch f := msg.GetFrame().(type) {
		case *proto.SessionResponse_Output:
			p.rest = f.Output
		case *proto.SessionResponse_Exit:
			p.end(exitFromProto(f.Exit), nil)
		default:
			p.end(ExitStatus{}, fmt.Errorf("%w: unexpected session frame %T", ErrPluginProtocol, f))
		}
	}
	n := copy(b, p.rest)
	p.rest = p.rest[n:]
	return n, nil
}

// sessionEnd asks the plugin how the session whose stream it released
// ended, once its channel's output was read to its end.
func (p *grpcPTY) sessionEnd() (ExitStatus, error) {
	wait := p.c.endWait
	if wait <= 0 {
		wait = sessionEndTimeout
	}
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	resp, err := p.c.client.SessionEnd(ctx, &proto.SessionEndRequest{SessionId: p.id, ByteChannelId: p.channelID})
	switch {
	case err == nil:
		return exitFromProto(resp.GetExit()), nil
	case ctx.Err() != nil && p.ctx.Err() == nil:
		return ExitStatus{}, fmt.Errorf("%w: the plugin did not say how the session ended within %v of its output's end", ErrPluginProtocol, wait)
	}
	return ExitStatus{}, p.streamError(err)
}

// exitFromProto converts a plugin's exit status from the wire, its text
// bounded and made clean (cleanExit): the host stores, returns and logs
// it.
func exitFromProto(e *proto.Exit) ExitStatus {
	return cleanExit(ExitStatus{Code: int(e.GetCode()), Signal: e.GetSignal(), Reason: e.GetReason()})
}

// end records how the session ended. Only Read calls it, once.
func (p *grpcPTY) end(st ExitStatus, err error) {
	p.readErr = err
	if err == nil {
		p.readErr = io.EOF
	}
	p.status, p.waitErr = st, err
	close(p.done)
}

// Wait returns the exit frame's status once Read has received it. If the
// stream broke instead, it returns Read's error (wrapping ErrPluginExited).
func (p *grpcPTY) Wait(ctx context.Context) (ExitStatus, error) {
	select {
	case <-p.done:
		return p.status, p.waitErr
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	case <-p.ctx.Done():
		// Closed, or the plugin died. Prefer an end Read already saw.
		select {
		case <-p.done:
			return p.status, p.waitErr
		default:
			return ExitStatus{}, p.ctxError()
		}
	}
}

// Kill asks the plugin to end the session's processes. Read then returns
// the remaining output and io.EOF. After Detach it fails with ErrDetached
// and does not reach the plugin.
func (p *grpcPTY) Kill(ctx context.Context) error {
	if p.detached() {
		return ErrDetached
	}
	ctx, cancel := p.c.join(ctx)
	defer cancel()
	_, err := p.c.client.Kill(ctx, &proto.KillRequest{SessionId: p.id})
	return p.c.callError(ctx, err)
}

// Close asks the plugin to release the session, then ends the stream (and
// closes the byte channel), which
// also unblocks a Read in progress. A session the plugin no longer has
// (because the plugin died or already cleaned up) closes without error.
// After Detach, Close only returns nil: the session is the plugin's.
func (p *grpcPTY) Close() error {
	p.closeOnce.Do(func() {
		if p.detached() {
			return
		}
		p.closing.Store(true)
		ctx, cancel := context.WithTimeout(p.c.pluginCtx, closeTimeout)
		_, err := p.c.client.Close(ctx, &proto.CloseRequest{SessionId: p.id})
		err = p.c.callError(ctx, err)
		cancel()
		p.cancel(errSessionClosed)
		p.closeInput()
		if errors.Is(err, ErrPluginExited) || errors.Is(err, ErrSessionNotFound) {
			err = nil
		}
		p.closeErr = err
	})
	return p.closeErr
}

// Detach implements Detacher: it ends the session stream without the Close
// RPC, so a plugin a host holds keeps the session for a later Attach (an
// unheld one kills it). Read, Write, Wait, Resize and Kill then fail with
// an error wrapping ErrDetached, and Close returns nil without reaching the
// plugin.
func (p *grpcPTY) Detach() {
	p.cancel(ErrDetached)
	p.closeInput()
}

// closeInput closes the terminal the plugin handed over for input, if
// any, now: no more input reaches the session from this host. (Its
// context's end closes it too, a moment later.)
func (p *grpcPTY) closeInput() {
	if p.input != nil {
		p.input.close()
	}
}

// detached reports whether Detach was called (and Close was not before).
func (p *grpcPTY) detached() bool {
	return p.ctx.Err() != nil && errors.Is(context.Cause(p.ctx), ErrDetached)
}

// ctxError says why the stream's context ended.
func (p *grpcPTY) ctxError() error {
	switch cause := context.Cause(p.ctx); {
	case errors.Is(cause, errSessionClosed):
		return errSessionClosed
	case errors.Is(cause, ErrDetached):
		return ErrDetached
	case p.c.pluginCtx.Err() != nil:
		return ErrPluginExited
	default:
		return cause
	}
}

// streamError converts an error from the session stream. Every way a stream
// can break before its exit frame wraps ErrPluginExited, so the host can
// tell a broken session from one that exited, except a message larger than
// the host takes, which wraps ErrPluginProtocol, and the plugin's report
// that the session's PTY failed (sessionFailure).
func (p *grpcPTY) streamError(err error) error {
	if p.ctx.Err() != nil {
		return p.ctxError()
	}
	if p.closing.Load() {
		return errSessionClosed
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: session stream ended without an exit status", ErrPluginExited)
	}
	if tooLarge(err) {
		return fmt.Errorf("%w: %w", ErrPluginProtocol, err)
	}
	if failed := sessionFailure(err); failed != nil {
		return failed
	}
	err = fromStatus(err)
	if errors.Is(err, ErrPluginExited) {
		return err
	}
	return fmt.Errorf("%w: session stream broke: %w", ErrPluginExited, err)
}

// sessionFailure returns the end of a session whose PTY failed in the
// plugin — its Read or Wait returned an error that names no sentinel,
// which the plugin's server sent as the stream's status — or nil for any
// other error. The plugin is alive and said why: the session ends with
// the plugin's message, not as a plugin that died.
func sessionFailure(err error) error {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unknown {
		return nil
	}
	if _, fromServer := errorKind(st); !fromServer {
		return nil
	}
	return fmt.Errorf("the plugin's session failed: %w", fromStatus(err))
}
