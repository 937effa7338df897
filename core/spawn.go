package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/ptyhost/ptyhost/shared"
)

// Starting a session's program: the request to its environment's plugin,
// bounded by Options.SpawnTimeout and cancelled by a destroy meanwhile.

// spawn asks the environment's plugin for the session's PTY, and returns
// it with the request it was spawned with; errors are recorded.
func (m *Manager) spawn(s *session, env Environment, dir string, opts CreateOptions) (shared.PTY, shared.SpawnRequest, error) {
	adapter, err := m.plugins.Environment(env.Type)
	if err != nil {
		return nil, shared.SpawnRequest{}, m.failed(s, err)
	}
	req := shared.SpawnRequest{
		SessionID:       opts.ID,
		EnvironmentID:   env.ID,
		EnvironmentType: env.Type,
		Config:          env.Config,
		Dir:             dir,
		Command:         opts.Command,
		Env:             m.withoutNeverEnv(opts.Env),
		UnsetEnv:        m.unsetEnv(append(slices.Clone(env.UnsetEnv), opts.UnsetEnv...)),
		Size:            shared.Size{Cols: uint16(opts.Cols), Rows: uint16(opts.Rows)},
		WorkdirRoots:    m.opts.WorkdirRoots,
		// The plugin keeps as much output as the ring does, counted from
		// the session's first byte, for a server that takes the session
		// up after this one (Reconcile).
		OutputOffset:    0,
		ScrollbackBytes: m.opts.ScrollbackBytes,
	}
	// Bounded by the manager's life, the spawn timeout and a destroy, not
	// by the caller: the row says STARTING, and a client that hangs up now
	// (an HTTP request's context) must not turn the start into an ERROR.
	p, err := m.startProcess(m.ctx, s, adapter, req, stateStarting)
	switch {
	case err == nil:
		// A destroy from now on is the caller's to notice.
		return p, req, nil
	case errors.Is(err, errStartAbandoned):
		return nil, shared.SpawnRequest{}, errStartAbandoned
	}
	return nil, shared.SpawnRequest{}, m.failed(s, err)
}

// startProcess asks adapter for the PTY of req, a process of session s,
// which must be in state live meanwhile (starting for a create, running
// for a restart). The start has Options.SpawnTimeout at most, whatever ctx
// allows, and a destroy of the session meanwhile cancels it (teardown
// calls s.cancelStart). A PTY answered although the start was given up
// (an adapter that did not watch ctx) is killed. The error wraps
// errStartAbandoned when the session was destroyed before or meanwhile,
// and ErrPluginTimeout past the spawn timeout.
func (m *Manager) startProcess(ctx context.Context, s *session, adapter shared.Environment, req shared.SpawnRequest, live sessState) (shared.PTY, error) {
	tctx, cancelTimeout := context.WithTimeoutCause(ctx, m.opts.SpawnTimeout, errSpawnTimedOut)
	defer cancelTimeout()
	sctx, cancel := context.WithCancelCause(tctx)
	defer cancel(nil)
	s.mu.Lock()
	if s.state != live {
		s.mu.Unlock()
		return nil, errStartAbandoned
	}
	s.cancelStart = cancel
	s.mu.Unlock()

	p, err := adapter.Spawn(sctx, req)
	if err == nil && p == nil {
		// A plugin's is refused by the SDK's server; an in-process
		// environment (StaticEnvironments) is not behind one, and a
		// session without a PTY would crash the server at its first read
		// or its hang-up.
		err = fmt.Errorf("%w: Spawn returned no PTY and no error", shared.ErrPluginProtocol)
	}

	s.mu.Lock()
	s.cancelStart = nil
	abandoned := s.state != live
	s.mu.Unlock()
	if err == nil && sctx.Err() == nil {
		return p, nil
	}
	if err == nil {
		m.killStarted(p, s.log)
		err = context.Cause(sctx)
	}
	switch {
	case abandoned || errors.Is(context.Cause(sctx), errStartAbandoned):
		return nil, fmt.Errorf("%w: %w", errStartAbandoned, err)
	case errors.Is(context.Cause(sctx), errSpawnTimedOut):
		return nil, fmt.Errorf("%w: not started within %v (the spawn timeout); the start was cancelled", ErrPluginTimeout, m.opts.SpawnTimeout)
	}
	return nil, err
}

var (
	// errSpawnTimedOut is the cause of a spawn's context past
	// Options.SpawnTimeout.
	errSpawnTimedOut = errors.New("spawn timeout")
	// errStartAbandoned is the cause of the context of the spawn of a
	// session destroyed or hung up while it started (teardown), and what
	// spawn returns for such a session, which CreateSession records.
	errStartAbandoned = errors.New("the session was destroyed while it started")
)

// unsetEnv returns the variables a session asked to be without, with the
// server's never-passed ones (Options.NeverEnv) added.
func (m *Manager) unsetEnv(names []string) []string {
	if len(m.opts.NeverEnv) == 0 {
		return names
	}
	out := slices.Clone(names)
	for _, k := range m.opts.NeverEnv {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// withoutNeverEnv returns env without the server's never-passed variables,
// which a request cannot set either.
func (m *Manager) withoutNeverEnv(env map[string]string) map[string]string {
	if len(m.opts.NeverEnv) == 0 {
		return env
	}
	out := maps.Clone(env)
	for _, k := range m.opts.NeverEnv {
		delete(out, k)
	}
	return out
}

// failed records a session that could not be started as ERROR and says so.
func (m *Manager) failed(s *session, err error) error {
	reason := err.Error()
	s.mu.Lock()
	s.rec.Status, s.rec.StatusReason = StatusError, reason
	s.mu.Unlock()
	status := StatusError
	s.changed(SessionUpdate{Status: &status, StatusReason: &reason})
	s.log.Warn("session failed to start", "err", err)
	m.publish(Event{Type: SessionError, SessionID: s.id, Err: err})
	return fmt.Errorf("%w: %w", ErrSpawn, err)
}

// ErrSpawn wraps every error of an environment's plugin while creating a
// session; errors.Is also finds the plugin's own error (shared.ErrX).
var ErrSpawn = errors.New("starting the session failed")

// ErrPluginTimeout says an environment's plugin did not answer in time: a
// spawn past Options.SpawnTimeout (wrapped in ErrSpawn too), a config
// validation past its bound. The API answers 504.
var ErrPluginTimeout = errors.New("the environment's plugin did not answer in time")

// killStarted ends a PTY whose session was destroyed while it started.
func (m *Manager) killStarted(p shared.PTY, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(m.ctx, killTimeout)
	defer cancel()
	if err := p.Kill(ctx); err != nil {
		log.Warn("kill failed", "err", err)
	}
	if err := p.Close(); err != nil {
		log.Warn("adapter cleanup failed", "err", err)
	}
}
