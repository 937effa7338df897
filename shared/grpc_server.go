package shared

import (
	"context"
	"errors"
	"fmt"
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
// live sessions by id so the host's Kill and Close calls find them, and
// releases a session whose stream ends early (the host went away).
type GRPCServer struct {
	proto.UnimplementedEnvironmentServer

	impl   Environment
	logger hclog.Logger

	mu sync.Mutex
	// mu protects the following.
	sessions map[string]*serverSession
}

var _ proto.EnvironmentServer = (*GRPCServer)(nil)

// NewGRPCServer returns a server for impl. A nil logger discards logs.
func NewGRPCServer(impl Environment, logger hclog.Logger) *GRPCServer {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &GRPCServer{impl: impl, logger: logger, sessions: make(map[string]*serverSession)}
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
// the id can be spawned again.
func (s *GRPCServer) Close(ctx context.Context, req *proto.CloseRequest) (*proto.CloseResponse, error) {
	sess, err := s.lookup(req.GetSessionId())
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

// Session implements proto.EnvironmentServer: it spawns the PTY, then pumps
// output up and input down until the exit frame is sent, and keeps the
// session until the host closes it or the stream ends.
func (s *GRPCServer) Session(stream proto.Environment_SessionServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	spawn := first.GetSpawn()
	if spawn == nil {
		return toStatus(fmt.Errorf("%w: the first session frame must be spawn", ErrInvalidArgument))
	}
	sess, err := s.spawn(ctx, spawn)
	if err != nil {
		return toStatus(err)
	}
	log := s.logger.With("session_id", sess.id)
	exited := false
	defer func() {
		// The stream is over: if the host did not Close the session, it
		// went away, so kill (unless it exited) and release what it left.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := sess.close(cctx, !exited); err != nil {
			log.Debug("closing session after its stream ended", "error", err)
		}
		s.remove(sess)
	}()

	if err := stream.Send(&proto.SessionResponse{Frame: &proto.SessionResponse_Started{Started: &proto.Started{}}}); err != nil {
		return err
	}
	go sess.pumpInput(ctx, stream, log)
	if err := sess.pumpOutput(ctx, stream); err != nil {
		return err
	}
	exited = true
	// The exit frame is out. Keep the session (and its id) until the host
	// closes it, which also ends the stream.
	<-ctx.Done()
	return nil
}

// spawn reserves the session id, then spawns the PTY. The id is reserved
// before Impl.Spawn runs, so two concurrent spawns of one id cannot both
// start a process.
func (s *GRPCServer) spawn(ctx context.Context, spawn *proto.Spawn) (*serverSession, error) {
	id := spawn.GetSessionId()
	if id == "" {
		return nil, fmt.Errorf("%w: empty session id", ErrInvalidArgument)
	}
	sess := &serverSession{id: id, ready: make(chan struct{})}
	s.mu.Lock()
	if _, dup := s.sessions[id]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("session %q: %w", id, ErrAlreadyExists)
	}
	s.sessions[id] = sess
	s.mu.Unlock()

	pty, err := s.impl.Spawn(ctx, spawnFromProto(spawn))
	if err != nil {
		s.remove(sess)
		return nil, err
	}
	sess.pty = pty
	close(sess.ready)
	return sess, nil
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
// adapters can shorten their grace to fit. Safe to call while serving.
func (s *GRPCServer) CloseAll(ctx context.Context) {
	s.mu.Lock()
	open := make([]*serverSession, 0, len(s.sessions))
	for _, sess := range s.sessions {
		select {
		case <-sess.ready:
			open = append(open, sess)
		default: // still spawning; its stream's end cleans it up
		}
	}
	s.mu.Unlock()

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

func spawnFromProto(p *proto.Spawn) SpawnRequest {
	return SpawnRequest{
		SessionID:       p.GetSessionId(),
		EnvironmentID:   p.GetEnvironmentId(),
		EnvironmentType: p.GetEnvironmentType(),
		Config:          p.GetConfig(),
		Dir:             p.GetDir(),
		Command:         p.GetArgv(),
		Env:             p.GetEnv(),
		Size:            sizeFromProto(p.GetSize()),
		WorkdirRoots:    p.GetWorkdirRoots(),
	}
}

func sizeFromProto(p *proto.Size) Size {
	return Size{Cols: clampUint16(p.GetCols()), Rows: clampUint16(p.GetRows())}
}

func clampUint16(v uint32) uint16 {
	return uint16(min(v, 0xffff))
}

// errSessionClosed is what input meets after the session was closed.
var errSessionClosed = errors.New("session closed")
