package shared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// errReleased ends a Host stream whose hold the host released.
var errReleased = errors.New("hold released")

// Hold implements Keeper: it opens the Host stream, sends the orphan
// timeout and waits for the plugin's answer. The stream stays open, holding
// the plugin, until release is called, ctx ends or the plugin exits; then
// the plugin's orphan timer starts (unless another hold is open). A plugin
// built before holds existed answers an error wrapping ErrUnsupported.
func (c *GRPCClient) Hold(ctx context.Context, orphanTimeout time.Duration) (release func(), err error) {
	if orphanTimeout <= 0 {
		return nil, fmt.Errorf("hold: %w: orphan timeout %v, want more than 0", ErrInvalidArgument, orphanTimeout)
	}
	// The stream lives as long as the plugin, ctx and the hold.
	streamCtx, cancelStream := context.WithCancelCause(c.pluginCtx)
	stop := context.AfterFunc(ctx, func() { cancelStream(context.Cause(ctx)) })
	release = func() {
		stop()
		cancelStream(errReleased)
	}
	stream, err := c.client.Host(streamCtx)
	if err != nil {
		release()
		return nil, fmt.Errorf("hold: %w", c.callError(streamCtx, err))
	}
	// Whole milliseconds, at least one: the plugin wants a positive count.
	ms := max(orphanTimeout.Milliseconds(), 1)
	if err := stream.Send(&proto.HostRequest{OrphanTimeoutMs: ms}); err != nil && !errors.Is(err, io.EOF) {
		release()
		return nil, fmt.Errorf("hold: %w", c.callError(streamCtx, err))
	}
	if _, err := stream.Recv(); err != nil {
		release()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("hold: %w", context.Cause(ctx))
		}
		return nil, fmt.Errorf("hold: %w", c.callError(streamCtx, err))
	}
	return release, nil
}

// Sessions implements Keeper.
func (c *GRPCClient) Sessions(ctx context.Context) ([]KeptSession, error) {
	ctx, cancel := c.join(ctx)
	defer cancel()
	// The list grows with the sessions kept: it has bounds of its own,
	// in bytes and in entries (keptListCodec).
	codec, refused := keptListOption()
	resp, err := c.client.Sessions(ctx, &proto.SessionsRequest{}, recvLimit(MaxSessionsMessageSize), codec)
	switch {
	case *refused != nil:
		return nil, fmt.Errorf("list kept sessions: %w", *refused)
	case tooLarge(err):
		return nil, fmt.Errorf("list kept sessions: %w: %w", ErrPluginProtocol, err)
	case err != nil:
		return nil, fmt.Errorf("list kept sessions: %w", c.callError(ctx, err))
	}
	kept := make([]KeptSession, 0, len(resp.GetSessions()))
	seen := make(map[string]bool, len(resp.GetSessions()))
	for i, k := range resp.GetSessions() {
		ks := KeptSession{
			ID:              k.GetSessionId(),
			EnvironmentID:   k.GetEnvironmentId(),
			EnvironmentType: k.GetEnvironmentType(),
			StartOffset:     k.GetStartOffset(),
			EndOffset:       k.GetEndOffset(),
			Attached:        k.GetAttached(),
		}
		if e := k.GetExit(); e != nil {
			st := exitFromProto(e)
			ks.Exit = &st
		}
		if err := checkKept(i, ks, seen); err != nil {
			return nil, fmt.Errorf("list kept sessions: %w", err)
		}
		kept = append(kept, ks)
	}
	return kept, nil
}

// Attach implements Keeper. As with Spawn, the stream belongs to the
// returned PTY and ctx bounds only the wait for the plugin's answer; a
// caller that gives up leaves the session kept, as it was.
func (c *GRPCClient) Attach(ctx context.Context, id string, offset int64) (PTY, int64, error) {
	first := &proto.SessionRequest{Frame: &proto.SessionRequest_Attach{Attach: &proto.Attach{SessionId: id, Offset: offset}}}
	p, start, err := c.openSession(ctx, "attach", id, first)
	if err != nil {
		return nil, 0, err
	}
	return p, start, nil
}
