package shared

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"runtime"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// closeTimeout bounds a session's Close call, which has no caller context.
// It covers an adapter's kill grace (the host plugin's is 2s) with room.
const closeTimeout = 30 * time.Second

// sessionEndTimeout bounds how long the host waits for SessionEnd's
// answer, once a released stream's channel has ended: the plugin knows
// the exit by then, or within moments (a container's exit code).
const sessionEndTimeout = 30 * time.Second

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
	// streamOnly keeps sessions' bytes on their streams: no byte channel
	// is asked for.
	streamOnly bool
	// keepStreams keeps a session's stream open beside its byte channel,
	// as hosts before Started.releases_stream did (tests cover that path
	// with it).
	keepStreams bool
	// inputFrames sends input as frames on the byte channel even when the
	// plugin could hand over the terminal (direct_input); tests set it.
	inputFrames bool
	// trustInput writes input to a terminal the plugin hands over with
	// raw system calls (TrustInput).
	trustInput bool
	// endWait bounds SessionEnd's answer; 0 is sessionEndTimeout (tests
	// set less).
	endWait time.Duration
	// connShut reports whether the connection to the plugin is shut down
	// (closed by go-plugin as the plugin stops or restarts); nil when the
	// connection cannot say.
	connShut func() bool
}

var (
	_ Environment     = (*GRPCClient)(nil)
	_ Keeper          = (*GRPCClient)(nil)
	_ ConfigValidator = (*GRPCClient)(nil)
	_ HealthChecker   = (*GRPCClient)(nil)
	_ ByteChannels    = (*GRPCClient)(nil)
)

// ByteChannels is implemented by an Environment whose sessions carry their
// bytes on byte channels where they can: a GRPCClient, and the server's
// environments over one. Hosts that cannot reach a plugin's Unix sockets
// use StreamOnly; tests, to cover both paths (sharedtest.Run does).
type ByteChannels interface {
	// StreamOnly returns the same environment, with every session's bytes
	// on its stream.
	StreamOnly() Environment
}

// NewGRPCClient returns a client over conn. pluginCtx must end when the
// plugin process exits (go-plugin passes such a context to
// GRPCPlugin.GRPCClient); sessions live at most as long as it. Every call
// takes messages of at most MaxMessageSize from the plugin (the list of
// kept sessions, MaxSessionsMessageSize), whatever conn's own options.
func NewGRPCClient(pluginCtx context.Context, conn grpc.ClientConnInterface) *GRPCClient {
	c := &GRPCClient{client: proto.NewEnvironmentClient(limitedConn{conn}), pluginCtx: pluginCtx}
	if sc, ok := conn.(interface{ GetState() connectivity.State }); ok {
		c.connShut = func() bool { return sc.GetState() == connectivity.Shutdown }
	}
	return c
}

// limitedConn is a connection to a plugin whose calls take messages of at
// most MaxMessageSize, unless the call's own options say otherwise (they
// come after).
type limitedConn struct{ grpc.ClientConnInterface }

func (c limitedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return c.ClientConnInterface.Invoke(ctx, method, args, reply, append([]grpc.CallOption{recvLimit(MaxMessageSize)}, opts...)...)
}

func (c limitedConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.ClientConnInterface.NewStream(ctx, desc, method, append([]grpc.CallOption{recvLimit(MaxMessageSize)}, opts...)...)
}

// StreamOnly implements ByteChannels: it returns a client like c (a
// *GRPCClient) whose sessions carry their bytes on their gRPC streams,
// never on a byte channel.
func (c *GRPCClient) StreamOnly() Environment {
	cc := *c
	cc.streamOnly = true
	return &cc
}

// InputTruster is implemented by a GRPCClient: a host that loads plugins
// itself (core/pluginhost does) trusts the ones it ships with it.
type InputTruster interface {
	// TrustInput returns the same environment, whose sessions write their
	// input to a terminal the plugin hands over (direct input) with raw
	// system calls, which spare a keystroke a wake-up of the Go runtime's
	// monitor thread. Only for a plugin the host ships: a plugin that
	// switched that terminal to blocking mode while it is full, between
	// the host's check of its mode and the write, would hold the whole
	// host process at its next garbage collection. Without it the write is
	// an ordinary system call, which such a plugin can only hold up for
	// one session.
	TrustInput() Environment
}

var _ InputTruster = (*GRPCClient)(nil)

// TrustInput implements InputTruster.
func (c *GRPCClient) TrustInput() Environment {
	cc := *c
	cc.trustInput = true
	return &cc
}

// Info implements Environment.
func (c *GRPCClient) Info(ctx context.Context) (Info, error) {
	ctx, cancel := c.join(ctx)
	defer cancel()
	resp, err := c.client.Info(ctx, &proto.InfoRequest{})
	if err != nil {
		return Info{}, c.callError(ctx, err)
	}
	// The plugin's free text is bounded and made clean here, where it
	// enters the host.
	return cleanInfo(Info{
		Name:         resp.GetName(),
		Version:      resp.GetVersion(),
		Types:        resp.GetTypes(),
		Capabilities: resp.GetCapabilities(),
	})
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
		OutputOffset:    req.OutputOffset,
		ScrollbackBytes: int64(req.ScrollbackBytes),
		UnsetEnv:        req.UnsetEnv,
	}
	p, _, err := c.openSession(ctx, "spawn", req.SessionID, &proto.SessionRequest{Frame: &proto.SessionRequest_Spawn{Spawn: spawn}})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// openSession opens a session stream for the session id, sends first and
// waits for the Started frame; it returns the PTY over the stream and the
// offset of the first output byte the stream carries. what names the
// operation in errors.
//
// If a spawn fails after the stream was opened, other than by the plugin's
// own answer (the caller gave up, the stream broke, the plugin answered
// nonsense), the plugin may have started the session and, if a host holds
// it, keep it: a best-effort Close releases it. A failed attach leaves the
// session as it was, kept.
func (c *GRPCClient) openSession(ctx context.Context, what, id string, first *proto.SessionRequest) (*grpcPTY, int64, error) {
	direct := !c.inputFrames && directInputHere
	if !c.streamOnly {
		switch f := first.GetFrame().(type) {
		case *proto.SessionRequest_Spawn:
			f.Spawn.ByteChannel, f.Spawn.ReleaseStream, f.Spawn.DirectInput = true, !c.keepStreams, direct
		case *proto.SessionRequest_Attach:
			f.Attach.ByteChannel, f.Attach.ReleaseStream, f.Attach.DirectInput = true, !c.keepStreams, direct
		}
	}
	streamCtx, cancelStream := context.WithCancelCause(c.pluginCtx)
	stream, err := c.client.Session(streamCtx)
	if err != nil {
		err = c.callError(streamCtx, err) // before the cancel, which it reads
		cancelStream(nil)
		return nil, 0, err
	}
	fail := func(err error, maybeStarted bool) (*grpcPTY, int64, error) {
		cancelStream(nil)
		if maybeStarted && what == "spawn" {
			c.forget(id)
		}
		return nil, 0, err
	}
	// Abandon the stream if the caller gives up before the plugin answers.
	stop := context.AfterFunc(ctx, func() { cancelStream(context.Cause(ctx)) })
	resp, err := sendFirst(stream, first)
	if !stop() {
		return fail(fmt.Errorf("%s session %q: %w", what, id, context.Cause(ctx)), true)
	}
	if errors.Is(err, io.EOF) {
		// Ended with OK, where a started frame or an error must come.
		return fail(fmt.Errorf("%s session %q: %w: it ended the session stream without answering", what, id, ErrPluginProtocol), true)
	}
	if err != nil {
		return fail(c.callError(streamCtx, err), !pluginAnswered(err))
	}
	started := resp.GetStarted()
	if started == nil {
		return fail(fmt.Errorf("%s session %q: %w: it answered %T instead of started", what, id, ErrPluginProtocol, resp.GetFrame()), true)
	}
	var ch *net.UnixConn
	var input *directInput
	closeChannel := func() {
		if ch != nil {
			ch.Close()
		}
		if input != nil {
			input.close()
		}
	}
	if addr := started.GetByteChannelAddress(); addr != "" {
		// A channel that cannot be opened is no failure: the stream
		// carries the bytes then. Nor is one offered unasked (StreamOnly),
		// which is not opened.
		if !c.streamOnly {
			ch, input, _ = dialChannel(ctx, addr, started.GetByteChannelToken(), started.GetByteChannelAck(), direct)
		}
		if input != nil {
			input.raw = c.trustInput
		}
		if ctx.Err() != nil {
			closeChannel()
			return fail(fmt.Errorf("%s session %q: %w", what, id, context.Cause(ctx)), true)
		}
		opened := &proto.SessionRequest{Frame: &proto.SessionRequest_ByteChannel{ByteChannel: &proto.ByteChannel{Opened: ch != nil}}}
		if err := stream.Send(opened); err != nil {
			closeChannel()
			if errors.Is(err, io.EOF) {
				// The plugin ended the stream: Recv has its status.
				err = setupEnded(stream)
			}
			return fail(c.callError(streamCtx, err), true)
		}
		if ch != nil && started.GetReleasesStream() {
			// The caller's ctx bounds the wait for the release too.
			stop := context.AfterFunc(ctx, func() { cancelStream(context.Cause(ctx)) })
			err := awaitRelease(stream)
			if !stop() {
				closeChannel()
				return fail(fmt.Errorf("%s session %q: %w", what, id, context.Cause(ctx)), true)
			}
			if err != nil {
				closeChannel()
				return fail(c.callError(streamCtx, err), true)
			}
			p := newGRPCPTY(c, id, nil, streamCtx, cancelStream, ch, input)
			p.channelID = started.GetByteChannelId()
			return p, started.GetOffset(), nil
		}
	}
	return newGRPCPTY(c, id, stream, streamCtx, cancelStream, ch, input), started.GetOffset(), nil
}

// awaitRelease waits for the plugin to end a stream it released to the
// session's byte channel, which frees the stream: a successful end (io.EOF
// from Recv). A frame instead is the plugin breaking the protocol.
func awaitRelease(stream proto.Environment_SessionClient) error {
	if err := stream.CloseSend(); err != nil {
		return err
	}
	msg, err := stream.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return err
	default:
		return fmt.Errorf("%w: it sent %T on a stream it released to the byte channel", ErrPluginProtocol, msg.GetFrame())
	}
}

// setupEnded returns why the plugin ended a session stream before the
// session's setup was done (a Send found it ended): its status, or
// ErrPluginProtocol for an end with OK or a frame, neither of which may
// come there.
func setupEnded(stream proto.Environment_SessionClient) error {
	msg, err := stream.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: it ended the session stream before the byte channel's answer", ErrPluginProtocol)
	case err != nil:
		return err
	}
	return fmt.Errorf("%w: it sent %T before the byte channel's answer", ErrPluginProtocol, msg.GetFrame())
}

// sendFirst sends a session stream's first frame and returns the plugin's
// first frame.
func sendFirst(stream proto.Environment_SessionClient, first *proto.SessionRequest) (*proto.SessionResponse, error) {
	// On io.EOF the plugin ended the stream; Recv returns its status.
	if err := stream.Send(first); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return stream.Recv()
}

// pluginAnswered reports whether err is a status a ptyhost plugin sent (it
// carries an ErrorDetail), as opposed to a broken call.
func pluginAnswered(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	_, fromServer := errorKind(st)
	return fromServer
}

// directInputHere: the host asks for a plugin's terminal (direct input)
// on Linux only, the one system where it can tell a terminal's master
// from its other side (masterCheck); elsewhere a plugin could hand over
// a terminal such as the server's own, and have keystrokes written to it.
const directInputHere = runtime.GOOS == "linux"

// forgetTimeout bounds the Close that releases a session whose spawn the
// host gave up on.
const forgetTimeout = 5 * time.Second

// forget asks the plugin, best effort, to release the session id, which a
// failed spawn may have started. The stream is cancelled first; a plugin
// still spawning the session undoes the spawn (see GRPCServer.Close).
func (c *GRPCClient) forget(id string) {
	ctx, cancel := context.WithTimeout(c.pluginCtx, forgetTimeout)
	defer cancel()
	_, _ = c.client.Close(ctx, &proto.CloseRequest{SessionId: id})
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

// tooLarge reports whether err is grpc-go's refusal of a message larger
// than the host takes (MaxMessageSize, MaxSessionsMessageSize): the
// plugin broke the protocol. A plugin's own RESOURCE_EXHAUSTED is an
// error like any other.
func tooLarge(err error) bool {
	st, ok := status.FromError(err)
	return ok && st.Code() == codes.ResourceExhausted && strings.Contains(st.Message(), "larger than max")
}

// callError converts an error from a call made with ctx (from join, or a
// stream context) into an error from errors.go's vocabulary. A call
// cancelled on a connection that is shut down, not by ctx, found the
// connection to the plugin closing — the plugin being stopped or
// restarted — and wraps ErrPluginExited, as a call the process died under.
// (A plugin's own Canceled, an adapter passing on its backend's gRPC
// error, comes over a connection that is up.)
func (c *GRPCClient) callError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && (errors.Is(context.Cause(ctx), ErrPluginExited) || c.pluginCtx.Err() != nil) {
		return ErrPluginExited
	}
	if st, ok := status.FromError(err); ok && st.Code() == codes.Canceled && ctx.Err() == nil && c.connShut != nil && c.connShut() {
		return fmt.Errorf("%w: %s", ErrPluginExited, errConnectionClosed)
	}
	return fromStatus(err)
}
