package shared

import (
	"context"
	"errors"
	"fmt"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// spawn reserves the session id, spawns the PTY and starts the session's
// reader, attached to the spawning stream. The id is reserved before
// Impl.Spawn runs, so two concurrent spawns of one id cannot both start a
// process.
func (s *GRPCServer) spawn(ctx context.Context, spawn *proto.Spawn) (*serverSession, *attachment, error) {
	req := spawnFromProto(spawn)
	if req.SessionID == "" {
		return nil, nil, fmt.Errorf("%w: empty session id", ErrInvalidArgument)
	}
	scrollback, err := scrollbackBytes(spawn.GetScrollbackBytes())
	if err != nil {
		return nil, nil, err
	}
	if req.OutputOffset < 0 {
		return nil, nil, fmt.Errorf("%w: negative output offset %d", ErrInvalidArgument, req.OutputOffset)
	}
	req.ScrollbackBytes = scrollback
	if s.dying() {
		return nil, nil, errOrphaned
	}
	sess := newServerSession(req, scrollback)
	sess.turns = s.turns
	s.mu.Lock()
	if _, dup := s.sessions[req.SessionID]; dup {
		s.mu.Unlock()
		return nil, nil, fmt.Errorf("session %q: %w", req.SessionID, ErrAlreadyExists)
	}
	s.sessions[req.SessionID] = sess
	s.mu.Unlock()

	pty, err := s.impl.Spawn(ctx, req)
	if err == nil && pty == nil {
		err = fmt.Errorf("%w: Spawn returned no PTY and no error", ErrPluginProtocol)
	}
	if err != nil {
		s.remove(sess)
		return nil, nil, err
	}
	a := sess.start(pty)
	s.mu.Lock()
	abandoned := sess.abandoned
	if !abandoned {
		close(sess.ready)
	}
	s.mu.Unlock()
	if abandoned {
		s.release(ctx, sess, true, s.logger.With("session_id", sess.id))
		return nil, nil, fmt.Errorf("session %q: closed while it was spawning: %w", req.SessionID, context.Canceled)
	}
	return sess, a, nil
}

// maxScrollbackBytes bounds SpawnRequest.ScrollbackBytes: a GiB of output
// kept per session is more than any host asks.
const maxScrollbackBytes = 1 << 30

// scrollbackBytes validates a spawn's scrollback_bytes; 0 means
// DefaultScrollbackBytes.
func scrollbackBytes(n int64) (int, error) {
	switch {
	case n == 0:
		return DefaultScrollbackBytes, nil
	case n < 0 || n > maxScrollbackBytes:
		return 0, fmt.Errorf("%w: scrollback of %d bytes, want 1 to %d", ErrInvalidArgument, n, maxScrollbackBytes)
	default:
		return int(n), nil
	}
}

// lookupOrAbandon returns the spawned session with this id, as lookup
// does; one still spawning is marked as given up by the host instead, and
// its spawn undoes itself when Impl.Spawn returns. Both under one lock,
// as spawn marks a session ready: a spawn that ends meanwhile is either
// found or undone.
func (s *GRPCServer) lookupOrAbandon(id string) (*serverSession, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess := s.sessions[id]; sess != nil {
		select {
		case <-sess.ready:
			return sess, nil
		default:
			sess.abandoned = true
		}
	}
	return nil, fmt.Errorf("session %q: %w", id, ErrSessionNotFound)
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
		OutputOffset:    p.GetOutputOffset(),
		ScrollbackBytes: int(max(0, min(p.GetScrollbackBytes(), maxScrollbackBytes))),
		UnsetEnv:        p.GetUnsetEnv(),
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
