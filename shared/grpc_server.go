package shared

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// MaxFrameSize is the largest payload of one input or output frame.
const MaxFrameSize = 64 << 10

// cleanupTimeout is the deadline of the Kill and Close the server sends on
// its own: to a session whose host went away, and to every session left
// when the plugin stops. Nobody waits for a graceful end then, and go-plugin
// kills a plugin that takes more than 2s to stop, so it is short; adapters
// shorten their kill grace to fit (see PTY.Kill's ctx).
const cleanupTimeout = 1500 * time.Millisecond

// GRPCServer adapts an Environment to the plugin's gRPC service. It keeps the
// live sessions by id so the host's Kill and Close calls find them, reads
// each session's output into a buffer of its scrollback size, and decides
// what happens to a session whose stream ends without Close: killed, unless
// a host holds the plugin (Host), which makes it kept for a later attach.
type GRPCServer struct {
	proto.UnimplementedEnvironmentServer

	impl   Environment
	logger hclog.Logger

	mu sync.Mutex
	// mu protects the following.
	sessions map[string]*serverSession
	// ends are the ends of the sessions' released streams, by channel id,
	// kept for SessionEnd (see openEnd): the session may be gone by the
	// time its host asks.
	ends map[uint64]*channelEnd

	hold holdState

	// channels serves the sessions' byte channels.
	channels channelListener

	// turns is the sessions' (waitTurn); tests change it.
	turns turnConfig
}

var _ proto.EnvironmentServer = (*GRPCServer)(nil)

// NewGRPCServer returns a server for impl. A nil logger discards logs.
func NewGRPCServer(impl Environment, logger hclog.Logger) *GRPCServer {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &GRPCServer{
		impl:     impl,
		logger:   logger,
		sessions: make(map[string]*serverSession),
		ends:     make(map[uint64]*channelEnd),
		hold:     holdState{afterFunc: afterFunc, exit: os.Exit},
		channels: channelListener{logger: logger},
		turns:    turnConfig{wait: takeoverInputWait},
	}
}

// Info implements proto.EnvironmentServer.
func (s *GRPCServer) Info(ctx context.Context, _ *proto.InfoRequest) (*proto.InfoResponse, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &proto.InfoResponse{
		Name:         info.Name,
		Version:      info.Version,
		Types:        info.Types,
		Capabilities: info.Capabilities,
	}, nil
}

// ValidateConfig implements proto.EnvironmentServer.
func (s *GRPCServer) ValidateConfig(ctx context.Context, req *proto.ValidateConfigRequest) (*proto.ValidateConfigResponse, error) {
	v, ok := s.impl.(ConfigValidator)
	if !ok {
		return nil, toStatus(fmt.Errorf("validate config: %w", ErrUnsupported))
	}
	if err := v.ValidateConfig(ctx, req.GetEnvironmentType(), req.GetConfig()); err != nil {
		return nil, toStatus(err)
	}
	return &proto.ValidateConfigResponse{}, nil
}

// Health implements proto.EnvironmentServer.
func (s *GRPCServer) Health(ctx context.Context, req *proto.HealthRequest) (*proto.HealthResponse, error) {
	h, ok := s.impl.(HealthChecker)
	if !ok {
		return nil, toStatus(fmt.Errorf("health: %w", ErrUnsupported))
	}
	if err := h.Health(ctx, req.GetEnvironmentType(), req.GetConfig()); err != nil {
		return nil, toStatus(err)
	}
	return &proto.HealthResponse{}, nil
}

// Kill implements proto.EnvironmentServer.
func (s *GRPCServer) Kill(ctx context.Context, req *proto.KillRequest) (*proto.KillResponse, error) {
	sess, err := s.lookup(req.GetSessionId())
	if err != nil {
		return nil, toStatus(err)
	}
	if err := sess.kill(ctx); err != nil {
		return nil, toStatus(err)
	}
	return &proto.KillResponse{}, nil
}

// Close implements proto.EnvironmentServer. It forgets the session id, so
// the id can be spawned again. A Close for a session still spawning (the
// host gave up on the spawn) makes the spawn undo itself.
func (s *GRPCServer) Close(ctx context.Context, req *proto.CloseRequest) (*proto.CloseResponse, error) {
	s.forgetEnds(req.GetSessionId()) // the host asks no more
	sess, err := s.lookupOrAbandon(req.GetSessionId())
	if err != nil {
		return nil, toStatus(err)
	}
	err = sess.close(ctx, false)
	s.remove(sess)
	if err != nil {
		return nil, toStatus(err)
	}
	return &proto.CloseResponse{}, nil
}

// Session implements proto.EnvironmentServer. Its first frame says what the
// stream serves: spawn starts a new session, attach takes up one the plugin
// keeps. Then it pumps output up and input down until the exit frame is
// sent, and keeps the stream until the host closes the session or ends the
// stream.
func (s *GRPCServer) Session(stream proto.Environment_SessionServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	switch f := first.GetFrame().(type) {
	case *proto.SessionRequest_Spawn:
		return s.spawnSession(stream, f.Spawn)
	case *proto.SessionRequest_Attach:
		return s.attachSession(stream, f.Attach)
	default:
		return toStatus(fmt.Errorf("%w: the first session frame must be spawn or attach", ErrInvalidArgument))
	}
}

// spawnSession serves a stream that spawns its session. The session is
// ready (Close finds it) before the Started frame goes out; if the stream
// ends before that frame is sent, the session is killed and released
// whether or not a host holds the plugin: the host never learnt of it.
func (s *GRPCServer) spawnSession(stream proto.Environment_SessionServer, spawn *proto.Spawn) error {
	ctx := stream.Context()
	sess, a, err := s.spawn(ctx, spawn)
	if err != nil {
		return toStatus(err)
	}
	log := s.logger.With("session_id", sess.id)
	started, offer := s.startedFrame(spawn.GetOutputOffset(), spawn.GetByteChannel(), spawn.GetReleaseStream(), sess.directInput(spawn.GetDirectInput()))
	err = ctx.Err()
	if err == nil {
		err = stream.Send(started)
	}
	if err != nil {
		log.Debug("session stream ended before the session started; killing it", "error", err)
		if offer != nil {
			s.channels.withdraw(offer)
		}
		s.release(ctx, sess, true, log)
		return err
	}
	return s.serve(stream, sess, a, offer, started.GetStarted().GetReleasesStream(), log)
}

// attachSession serves a stream that takes up a session the plugin keeps,
// from the offset asked for (or the oldest byte kept). A stream that served
// the session until now ends.
func (s *GRPCServer) attachSession(stream proto.Environment_SessionServer, req *proto.Attach) error {
	sess, err := s.lookup(req.GetSessionId())
	if err != nil {
		return toStatus(err)
	}
	a, start := sess.out.attach(req.GetOffset())
	log := s.logger.With("session_id", sess.id)
	log.Debug("session stream attached", "offset", req.GetOffset(), "from", start)
	// While input of the streams before it is still to be applied
	// (a.before), the host gets no terminal to write to: its input goes
	// as frames, which wait for that input (waitTurn).
	direct := req.GetDirectInput() && len(a.before) == 0
	started, offer := s.startedFrame(start, req.GetByteChannel(), req.GetReleaseStream(), sess.directInput(direct))
	if err := stream.Send(started); err != nil {
		if offer != nil {
			s.channels.withdraw(offer)
		}
		s.streamEnded(stream.Context(), sess, a, log)
		return err
	}
	return s.serve(stream, sess, a, offer, started.GetStarted().GetReleasesStream(), log)
}

// startedFrame is the Started frame of a stream whose first output byte is
// at offset, with an offer of a byte channel if the host asked for one and
// the plugin can serve it, and the promise to release the stream to it if
// the host asked for that too. input, if not nil, is the terminal the
// channel's acknowledgement carries (direct_input).
func (s *GRPCServer) startedFrame(offset int64, byteChannel, release bool, input *os.File) (*proto.SessionResponse, *channelOffer) {
	started := &proto.Started{Offset: offset}
	var offer *channelOffer
	if byteChannel {
		var addr string
		if offer, addr = s.channels.offer(input); offer != nil {
			started.ByteChannelAddress = addr
			started.ByteChannelToken = offer.token()
			started.ByteChannelAck = offer.ack[:]
			started.ReleasesStream = release
			started.ByteChannelId = offer.id
		}
	}
	return &proto.SessionResponse{Frame: &proto.SessionResponse_Started{Started: started}}, offer
}

// serve pumps a started stream: output (from a's cursor) and the exit frame
// up, input down, on the byte channel if offer was taken up, else on the
// stream. After the exit frame it keeps the stream open until the host
// closes the session, ends the stream, or another stream takes the session
// over. Then streamEnded decides what becomes of the session.
//
// With release (the Started frame promised it), a channel taken up stands
// for the stream from then on: serve hands the session to serveReleased
// and ends the stream.
func (s *GRPCServer) serve(stream proto.Environment_SessionServer, sess *serverSession, a *attachment, offer *channelOffer, release bool, log hclog.Logger) error {
	ctx := stream.Context()
	released := false
	defer func() {
		if !released {
			s.streamEnded(ctx, sess, a, log)
		}
	}()
	stop := context.AfterFunc(ctx, func() { sess.out.endStream(a) })
	defer stop()
	if offer != nil {
		conn, err := s.takeChannel(ctx, stream, offer)
		if err != nil {
			return err
		}
		if conn != nil && release {
			if !stop() {
				// The stream ended meanwhile: so did the attachment.
				conn.Close()
				return ctx.Err()
			}
			released = true
			go s.serveReleased(sess, a, s.openEnd(sess.id, offer.id), conn, log)
			return nil
		}
		if conn != nil {
			return sess.serveChannel(ctx, streamExit(stream), a, conn, nil, log)
		}
	}
	go sess.pumpInput(stream, a, log)
	if err := sess.pumpOutput(ctx, stream, a); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-a.gone:
	}
	return nil
}

// streamEnded handles the end of a's stream without Close. If another
// stream took the session over, or it was closed, nothing is left to do.
// Otherwise the session is detached: kept for a later attach if a host
// holds the plugin; killed (unless it exited) and released if not, as the
// host that went away was the only one that knew it.
func (s *GRPCServer) streamEnded(ctx context.Context, sess *serverSession, a *attachment, log hclog.Logger) {
	if !sess.out.detach(a) {
		return
	}
	if s.held() {
		log.Debug("session stream ended without close; keeping the session")
		return
	}
	s.release(ctx, sess, !sess.out.hasExited(), log)
}

// release closes sess (killing it first with kill) and forgets it, with
// cleanupTimeout and whatever is left of ctx's values.
func (s *GRPCServer) release(ctx context.Context, sess *serverSession, kill bool, log hclog.Logger) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := sess.close(cctx, kill); err != nil {
		log.Debug("closing session after its stream ended", "error", err)
	}
	s.remove(sess)
}

// Sessions implements proto.EnvironmentServer: every session spawned and
// not closed, with the output it keeps and its exit status once it exited.
func (s *GRPCServer) Sessions(context.Context, *proto.SessionsRequest) (*proto.SessionsResponse, error) {
	resp := &proto.SessionsResponse{}
	for _, sess := range s.readySessions() {
		if sess.closed.Load() {
			continue
		}
		start, end, attached, exit := sess.out.kept()
		k := &proto.KeptSession{
			SessionId:       sess.id,
			EnvironmentId:   sess.environmentID,
			EnvironmentType: sess.environmentType,
			StartOffset:     start,
			EndOffset:       end,
			Attached:        attached,
		}
		if exit != nil {
			k.Exit = exitToProto(*exit)
		}
		resp.Sessions = append(resp.Sessions, k)
	}
	slices.SortFunc(resp.Sessions, func(a, b *proto.KeptSession) int { return strings.Compare(a.SessionId, b.SessionId) })
	return resp, nil
}

// readySessions returns the sessions spawned, not those still spawning.
func (s *GRPCServer) readySessions() []*serverSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	ready := make([]*serverSession, 0, len(s.sessions))
	for _, sess := range s.sessions {
		select {
		case <-sess.ready:
			ready = append(ready, sess)
		default: // still spawning; its stream's end cleans it up
		}
	}
	return ready
}

// lookup returns the spawned session with this id.
func (s *GRPCServer) lookup(id string) (*serverSession, error) {
	s.mu.Lock()
	sess := s.sessions[id]
	s.mu.Unlock()
	if sess != nil {
		select {
		case <-sess.ready:
			return sess, nil
		default: // still spawning
		}
	}
	return nil, fmt.Errorf("session %q: %w", id, ErrSessionNotFound)
}

// remove forgets sess, unless its id already belongs to a newer session.
func (s *GRPCServer) remove(sess *serverSession) {
	s.mu.Lock()
	if s.sessions[sess.id] == sess {
		delete(s.sessions, sess.id)
	}
	s.mu.Unlock()
}

// CloseAll kills and closes every session still open, as a plugin process
// does before it exits, all at once, and returns when they are closed
// (including those being closed meanwhile by their streams' end) or when
// ctx ends, whichever is first. ctx's deadline is passed to Kill, so
// adapters can shorten their grace to fit. Safe to call while serving; it
// also removes the byte channels' socket, so later sessions' bytes go on
// their streams.
func (s *GRPCServer) CloseAll(ctx context.Context) {
	s.channels.close()
	open := s.readySessions()
	var wg sync.WaitGroup
	for _, sess := range open {
		wg.Go(func() {
			if err := sess.close(ctx, true); err != nil {
				s.logger.Debug("closing session at shutdown", "session_id", sess.id, "error", err)
			}
			s.remove(sess)
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.logger.Warn("sessions still closing when the deadline passed", "sessions", len(open))
	}
}
