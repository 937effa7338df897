package shared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"syscall"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// What goes from the host to the plugin on a session: input and resizes,
// on the terminal the plugin handed over, the byte channel or the stream,
// one sender at a time (the send slot).

// Write sends input, in frames of at most MaxFrameSize, or writes it to
// the terminal itself when the plugin handed it over (direct_input). A
// terminal that cannot take all of b at once (the program does not read)
// is given up: the rest of b, and all later input, go as frames, which the
// plugin writes in order after what went.
func (p *grpcPTY) Write(b []byte) (int, error) {
	d := p.input
	if d == nil || d.gaveUp.Load() {
		return p.writeFrames(b)
	}
	// Held throughout, so that input given up on keeps its order.
	if err := p.takeInput(p.ctx); err != nil {
		return 0, err
	}
	defer d.release()
	if d.fd < 0 {
		return p.writeFrames(b)
	}
	n, err := d.writeNow(b)
	switch {
	case err == nil && n == len(b):
		return n, nil
	case errors.Is(err, syscall.EIO):
		// Every program on the terminal is gone, on a system that says
		// so (Linux takes a few KiB more, then is full, below): the
		// plugin drops input then too.
		return len(b), nil
	}
	d.closeLocked()
	m, err := p.writeFrames(b[n:])
	d.gaveUp.Store(true)
	return n + m, err
}

// takeInput takes the direct input's slot, waiting at most until ctx
// ends, and fails at once if the session's context ended.
func (p *grpcPTY) takeInput(ctx context.Context) error {
	if p.ctx.Err() != nil {
		return p.ctxError()
	}
	select {
	case p.input.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.ctx.Done():
		return p.ctxError()
	}
}

// writeFrames sends b as input frames, on the byte channel or the stream.
func (p *grpcPTY) writeFrames(b []byte) (int, error) {
	if p.ch != nil {
		return p.sendChannel(p.ctx, channelInput, b)
	}
	written := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), MaxFrameSize)]
		if err := p.send(p.ctx, &proto.SessionRequest{Frame: &proto.SessionRequest_Input{Input: chunk}}); err != nil {
			return written, err
		}
		written += len(chunk)
		b = b[len(chunk):]
	}
	return written, nil
}

// Resize sets the terminal's size: itself, on the terminal the plugin
// handed over (in order with the input written there), or with a resize
// frame, which the plugin applies in order with the input frames. It
// returns once the size is set or the frame sent, or when ctx ends: a
// frame that had its turn by then is still sent, whole and in order, when
// the plugin reads, and Resize returns nil; one that had not is never
// sent, and Resize returns ctx's error. A size with a zero
// dimension is refused with ErrInvalidArgument, whichever the way.
func (p *grpcPTY) Resize(ctx context.Context, size Size) error {
	if size.Cols == 0 || size.Rows == 0 {
		return fmt.Errorf("%w: terminal size %dx%d", ErrInvalidArgument, size.Cols, size.Rows)
	}
	if d := p.input; d != nil && !d.gaveUp.Load() {
		if err := p.takeInput(ctx); err != nil {
			return err
		}
		// Held through a frame too, in order with input given up on.
		defer d.release()
		if d.fd >= 0 {
			return d.resize(size)
		}
	}
	// The frame is sent by a goroutine of its own, so that the wait ends
	// with ctx even once the frame's write has begun (a plugin that does
	// not read, its socket or stream full). A frame that has the send
	// slot when ctx ends is committed: it goes, whole and in order before
	// any later input or resize, when the plugin reads again (or never, if
	// the session ends first), and Resize reports it sent. One that does
	// not is abandoned and never sent.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("the plugin took no resize in time: %w", err)
	}
	const pending, committed, abandoned = 0, 1, 2
	var state atomic.Int32
	done := make(chan error, 1)
	go func() {
		if err := p.takeSendSlot(ctx); err != nil {
			done <- err
			return
		}
		defer func() { <-p.sendSlot }()
		if !state.CompareAndSwap(pending, committed) {
			return
		}
		if p.ch != nil {
			_, err := p.writeChannel(channelResize, resizePayload(size))
			done <- err
			return
		}
		done <- p.sendStream(&proto.SessionRequest{Frame: &proto.SessionRequest_Resize{
			Resize: &proto.Size{Cols: uint32(size.Cols), Rows: uint32(size.Rows)},
		}})
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		if state.CompareAndSwap(pending, abandoned) {
			return fmt.Errorf("the plugin took no resize in time: %w", ctx.Err())
		}
		return nil
	}
}

// sendChannel writes b on the byte channel as frames of type typ, of at
// most MaxFrameSize bytes each, waiting for its turn at most until ctx
// ends. It returns how many bytes of b went.
func (p *grpcPTY) sendChannel(ctx context.Context, typ byte, b []byte) (int, error) {
	if err := p.takeSendSlot(ctx); err != nil {
		return 0, err
	}
	defer func() { <-p.sendSlot }()
	return p.writeChannel(typ, b)
}

// writeChannel is sendChannel's write, by the holder of the send slot.
func (p *grpcPTY) writeChannel(typ byte, b []byte) (int, error) {
	written := 0
	for {
		chunk := b[:min(len(b), MaxFrameSize)]
		var h [channelHeaderSize]byte
		// The header and the payload in one writev, with no copy.
		bufs := net.Buffers{inputHeader(&h, typ, len(chunk)), chunk}
		if _, err := bufs.WriteTo(p.ch); err != nil {
			if p.ctx.Err() != nil {
				return written, p.ctxError()
			}
			return written, fmt.Errorf("%w: byte channel broke: %w", ErrPluginExited, withoutAddresses(err))
		}
		written += len(chunk)
		b = b[len(chunk):]
		if len(b) == 0 {
			return written, nil
		}
	}
}

// takeSendSlot takes the send slot, waiting at most until ctx ends, and
// fails at once if the stream's context ended (closed, detached, plugin
// gone).
func (p *grpcPTY) takeSendSlot(ctx context.Context) error {
	if p.ctx.Err() != nil {
		// Closed or detached: say so, whichever ctx the caller passed.
		return p.ctxError()
	}
	select {
	case p.sendSlot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-p.ctx.Done():
		return p.ctxError()
	}
}

// send sends one frame, waiting for its turn at most until ctx ends.
func (p *grpcPTY) send(ctx context.Context, msg *proto.SessionRequest) error {
	if err := p.takeSendSlot(ctx); err != nil {
		return err
	}
	defer func() { <-p.sendSlot }()
	return p.sendStream(msg)
}

// sendStream is send's send, by the holder of the send slot.
func (p *grpcPTY) sendStream(msg *proto.SessionRequest) error {
	err := p.stream.Send(msg)
	switch {
	case err == nil:
		return nil
	case p.ctx.Err() != nil:
		return p.ctxError()
	case errors.Is(err, io.EOF):
		// The plugin ended the stream; Read returns its status.
		return fmt.Errorf("%w: session stream ended", ErrPluginExited)
	default:
		return p.streamError(err)
	}
}

// withoutAddresses returns err, an error of a socket's write, without the
// socket's addresses: a *net.OpError's message names the byte channel's
// path ("write unix ->/tmp/ptyhost-plugin-…/…"), which is no use to the
// client told of it; its cause ("write: broken pipe") stays, and wrapped.
func withoutAddresses(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}
