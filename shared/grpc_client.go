package shared

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"time"

	"google.golang.org/grpc"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// closeTimeout bounds a session's Close call, which has no caller context.
// It covers an adapter's kill grace (the host plugin's is 2s) with room.
const closeTimeout = 30 * time.Second

// GRPCClient is the host's side of the plugin protocol: an Environment whose
// calls go to a plugin process. It also implements ConfigValidator and
// HealthChecker; those return an error wrapping ErrUnsupported when the
// plugin does not (see Info's capabilities).
//
// Every call joins the caller's context with the plugin's lifetime, so a call
// in flight when the plugin process dies fails with ErrPluginExited.
type GRPCClient struct {
	client proto.EnvironmentClient
	// pluginCtx ends when the plugin process has exited.
	pluginCtx context.Context
}

var (
	_ Environment     = (*GRPCClient)(nil)
	_ ConfigValidator = (*GRPCClient)(nil)
	_ HealthChecker   = (*GRPCClient)(nil)
)

// NewGRPCClient returns a client over conn. pluginCtx must end when the
// plugin process exits (go-plugin passes such a context to
// GRPCPlugin.GRPCClient); sessions live at most as long as it.
func NewGRPCClient(pluginCtx context.Context, conn grpc.ClientConnInterface) *GRPCClient {
	return &GRPCClient{client: proto.NewEnvironmentClient(conn), pluginCtx: pluginCtx}
}

// Info implements Environment.
func (c *GRPCClient) Info(ctx context.Context) (Info, error) {
	ctx, cancel := c.join(ctx)
	defer cancel()
	resp, err := c.client.Info(ctx, &proto.InfoRequest{})
	if err != nil {
		return Info{}, c.callError(ctx, err)
	}
	return Info{
		Name:         resp.GetName(),
		Version:      resp.GetVersion(),
		Types:        resp.GetTypes(),
		Capabilities: resp.GetCapabilities(),
	}, nil
}

// ValidateConfig implements ConfigValidator.
func (c *GRPCClient) ValidateConfig(ctx context.Context, envType string, config json.RawMessage) error {
	ctx, cancel := c.join(ctx)
	defer cancel()
	_, err := c.client.ValidateConfig(ctx, &proto.ValidateConfigRequest{EnvironmentType: envType, Config: config})
	return c.callError(ctx, err)
}

// Health implements HealthChecker.
func (c *GRPCClient) Health(ctx context.Context, envType string, config json.RawMessage) error {
	ctx, cancel := c.join(ctx)
	defer cancel()
	_, err := c.client.Health(ctx, &proto.HealthRequest{EnvironmentType: envType, Config: config})
	return c.callError(ctx, err)
}

// Spawn implements Environment. It opens the session stream, sends the spawn
// frame and waits for the plugin's answer. The stream belongs to the
// returned PTY, not to ctx: ctx bounds only the wait, and if it ends first
// the stream is cancelled, which makes the plugin release the session.
func (c *GRPCClient) Spawn(ctx context.Context, req SpawnRequest) (PTY, error) {
	streamCtx, cancelStream := context.WithCancelCause(c.pluginCtx)
	stream, err := c.client.Session(streamCtx)
	if err != nil {
		cancelStream(nil)
		return nil, c.callError(streamCtx, err)
	}
	// Abandon the stream if the caller gives up before the plugin answers.
	stop := context.AfterFunc(ctx, func() { cancelStream(context.Cause(ctx)) })
	first, err := c.startSession(stream, req)
	if !stop() {
		cancelStream(nil)
		return nil, fmt.Errorf("spawn session %q: %w", req.SessionID, context.Cause(ctx))
	}
	if err != nil {
		cancelStream(nil)
		return nil, c.callError(streamCtx, err)
	}
	if first.GetStarted() == nil {
		cancelStream(nil)
		return nil, fmt.Errorf("spawn session %q: %w: plugin answered %v instead of started", req.SessionID, ErrPluginExited, first)
	}
	return newGRPCPTY(c, req.SessionID, stream, streamCtx, cancelStream), nil
}

// startSession sends the spawn frame and returns the plugin's first frame.
func (c *GRPCClient) startSession(stream proto.Environment_SessionClient, req SpawnRequest) (*proto.SessionResponse, error) {
	spawn := &proto.Spawn{
		SessionId:       req.SessionID,
		EnvironmentId:   req.EnvironmentID,
		EnvironmentType: req.EnvironmentType,
		Config:          req.Config,
		Dir:             req.Dir,
		Argv:            req.Command,
		Env:             maps.Clone(req.Env),
		Size:            &proto.Size{Cols: uint32(req.Size.Cols), Rows: uint32(req.Size.Rows)},
		WorkdirRoots:    req.WorkdirRoots,
	}
	// On io.EOF the plugin ended the stream; Recv returns its status.
	if err := stream.Send(&proto.SessionRequest{Frame: &proto.SessionRequest_Spawn{Spawn: spawn}}); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return stream.Recv()
}

// join returns ctx, cancelled also when the plugin process exits (with
// ErrPluginExited as the cause).
func (c *GRPCClient) join(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(c.pluginCtx, func() { cancel(ErrPluginExited) })
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

// callError converts an error from a call made with ctx (from join, or a
// stream context) into an error from errors.go's vocabulary.
func (c *GRPCClient) callError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && (errors.Is(context.Cause(ctx), ErrPluginExited) || c.pluginCtx.Err() != nil) {
		return ErrPluginExited
	}
	return fromStatus(err)
}
