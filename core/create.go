package core

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// CreateOptions describe a session to create.
type CreateOptions struct {
	// ID is the session's id; generated when empty. Letters, digits, '.',
	// '_' and '-', at most 128 characters; not "." or "..".
	ID            string
	EnvironmentID string
	// ProjectID and BranchName are labels the server stores and shows: at
	// most MaxProjectIDBytes and MaxBranchNameBytes of UTF-8 with no
	// control character.
	ProjectID  string
	BranchName string
	// WorktreePath is the working directory: at most MaxWorktreePathBytes,
	// with no NUL byte.
	WorktreePath string
	// Command is the argv; empty means the environment's shell. Its first
	// element must not be empty, and no element may hold a NUL byte.
	Command []string
	// Env holds extra environment variables.
	Env map[string]string
	// UnsetEnv names variables the session must not have: inherited from
	// the plugin's environment, or set by the environment's config. A name
	// may not be in Env too. The server's Options.NeverEnv are added.
	UnsetEnv []string
	// Cols and Rows are the terminal's size; zero means 80×24.
	Cols, Rows int
	// IdleTimeout, when set, is the session's idle timeout as
	// ParseIdleTimeout reads it ("never", "0", "90s", ...); empty means its
	// environment's, else the server's.
	IdleTimeout string
	// Input, when set, is typed into the terminal once the program is
	// ready to read: when it has written its first output and then been
	// quiet for 100 ms (at most 2 s after that first output), or 3 s after
	// the start if it writes nothing. It is typed again after each restart
	// (RestartSession), but not after a restart of a session taken up
	// from a previous server: it is not stored. At most MaxInputBytes.
	Input []byte
	// MaxClients bounds the clients attached to the session at a time (the
	// next attach is ErrTooManyClients, unless a writer can take a
	// viewer's place: see AttachWith); 0 means the server's
	// Options.MaxClients. Not negative.
	MaxClients int
	// SizePolicy is the session's size policy (ParseSizePolicy's names);
	// empty means the server's Options.SizePolicy.
	SizePolicy SizePolicy
	// Record, when not nil, says whether the session is recorded
	// (recording.go); nil means its environment's Record, else the
	// server's Options.Record. true on a server without
	// Options.RecordingDir is ErrInvalidArgument.
	Record *bool
}

// MaxInputBytes bounds CreateOptions.Input.
const MaxInputBytes = 64 << 10

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

func validID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w: id %q: use 1 to 128 letters, digits, '.', '_' or '-'", ErrInvalidArgument, id)
	}
	if id == "." || id == ".." {
		// A URL path cannot name them: /sessions/.. is /.
		return fmt.Errorf("%w: id %q is not addressable; use another", ErrInvalidArgument, id)
	}
	return nil
}

func validSize(cols, rows int) error {
	if cols < 1 || cols > MaxTermSize || rows < 1 || rows > MaxTermSize {
		return fmt.Errorf("%w: size %dx%d: cols and rows must be integers from 1 to %d", ErrInvalidArgument, cols, rows, MaxTermSize)
	}
	return nil
}

// newID returns a random session or environment id.
func newID() string { return rand.Text()[:20] }

func (o *CreateOptions) normalize() error {
	if o.ID == "" {
		o.ID = newID()
	}
	if err := validID(o.ID); err != nil {
		return err
	}
	if o.EnvironmentID == "" {
		return fmt.Errorf("%w: environment_id is required", ErrInvalidArgument)
	}
	if err := checkTextField("project_id", o.ProjectID, MaxProjectIDBytes); err != nil {
		return err
	}
	if err := checkTextField("branch_name", o.BranchName, MaxBranchNameBytes); err != nil {
		return err
	}
	if err := checkPath("worktree_path", o.WorktreePath, MaxWorktreePathBytes); err != nil {
		return err
	}
	if o.Cols == 0 && o.Rows == 0 {
		o.Cols, o.Rows = DefaultCols, DefaultRows
	}
	if err := validSize(o.Cols, o.Rows); err != nil {
		return err
	}
	idle, err := normalizeIdleTimeout(o.IdleTimeout)
	if err != nil {
		return err
	}
	o.IdleTimeout = idle
	if len(o.Command) > 0 && o.Command[0] == "" {
		return fmt.Errorf("%w: command[0] is empty; name the program to run, or send no command for the environment's shell", ErrInvalidArgument)
	}
	for i, arg := range o.Command {
		if strings.IndexByte(arg, 0) >= 0 {
			return fmt.Errorf("%w: command[%d] holds a NUL byte", ErrInvalidArgument, i)
		}
	}
	if err := shared.CheckEnvNames(o.UnsetEnv); err != nil {
		return fmt.Errorf("%w: unset_env: %v", ErrInvalidArgument, err)
	}
	for _, k := range o.UnsetEnv {
		if _, ok := o.Env[k]; ok {
			return fmt.Errorf("%w: variable %s is both in env and in unset_env", ErrInvalidArgument, k)
		}
	}
	if o.MaxClients < 0 {
		return fmt.Errorf("%w: max_clients %d: want 0 (the server's limit) or a positive number", ErrInvalidArgument, o.MaxClients)
	}
	if o.SizePolicy != "" {
		if _, err := ParseSizePolicy(string(o.SizePolicy)); err != nil {
			return err
		}
	}
	if len(o.Input) > MaxInputBytes {
		return fmt.Errorf("%w: input is %d bytes; the limit is %d", ErrInvalidArgument, len(o.Input), MaxInputBytes)
	}
	for k, v := range o.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("%w: env name %q", ErrInvalidArgument, k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("%w: env %s: the value holds a NUL byte", ErrInvalidArgument, k)
		}
	}
	return nil
}

// storeTimeout bounds each store call a request waits on, so that a
// database that hangs answers 503 rather than holding the request (a
// variable for tests).
var storeTimeout = 5 * time.Second

// CreateSession starts a session and returns its record. A duplicate live
// id is ErrAlreadyExists; a session that has exited is replaced, and one
// being destroyed is waited for, within ctx. An unknown environment is
// ErrEnvironmentNotFound.
//
// The session's row is written, as STARTING, before the plugin is asked to
// start it: once CreateSession returns, the record survives any crash. A
// store that fails that write is ErrStoreUnavailable, with nothing started.
// Any failure after the plugin was asked leaves nothing running and
// records the session as ERROR. ctx bounds the steps before the plugin is
// asked; the plugin has Options.SpawnTimeout to start it, whatever ctx
// allows or however it ends (a client that hung up does not cancel the
// start, which goes on to its end and its record); past that the start is
// cancelled and the error wraps ErrSpawn and ErrPluginTimeout. A
// DestroySession meanwhile cancels the start as well: the session is
// recorded TERMINATED and the error wraps ErrSessionNotFound.
func (m *Manager) CreateSession(ctx context.Context, opts CreateOptions) (SessionRecord, error) {
	if err := opts.normalize(); err != nil {
		return SessionRecord{}, err
	}
	if err := m.checkRecordable(opts.Record); err != nil {
		return SessionRecord{}, err
	}
	m.mu.Lock()
	envDeletes := m.envDeletes
	m.mu.Unlock()
	env, err := m.lookupEnvironment(ctx, opts.EnvironmentID)
	if err == nil {
		err = m.checkClusterCreate(ctx, env, opts.ID) // placement.go
	}
	if err != nil {
		m.metrics.createFailed.Inc()
		return SessionRecord{}, err
	}
	dir, err := m.workdir(env.Type, opts.WorktreePath)
	if err != nil {
		m.metrics.createFailed.Inc()
		return SessionRecord{}, err
	}
	now := m.now()
	s := newSession(m.deps, SessionRecord{
		ID:            opts.ID,
		EnvironmentID: opts.EnvironmentID,
		Node:          m.opts.NodeName,
		ProjectID:     opts.ProjectID,
		BranchName:    opts.BranchName,
		WorktreePath:  opts.WorktreePath,
		Command:       slices.Clone(opts.Command),
		UnsetEnv:      slices.Clone(opts.UnsetEnv),
		MaxClients:    opts.MaxClients,
		SizePolicy:    opts.SizePolicy,
		Status:        StatusStarting,
		Cols:          opts.Cols,
		Rows:          opts.Rows,
		LastActiveAt:  now,
		IdleTimeout:   m.idleTimeoutFor(opts.IdleTimeout, env.IdleTimeout),
		DetachedAt:    now, // no client yet
		// To the microsecond every store keeps (m.now), so that the
		// epoch it makes (epochLocked) is the same after a server takes
		// the session up from the store.
		CreatedAt: now,
		UpdatedAt: now,
	})
	defer close(s.created)

	// Reserve the id before anything else, so that two concurrent creates
	// of one id cannot both spawn; after the teardown of a session of the
	// same id that is being destroyed, whose record it is to write.
	old, err := m.reserveLocked(ctx, opts.ID, opts.EnvironmentID, envDeletes)
	if err != nil {
		m.metrics.createFailed.Inc()
		return SessionRecord{}, err
	}
	m.sessions[opts.ID] = s
	m.mu.Unlock()
	if old != nil {
		m.teardown(ctx, old, CloseNormal, CloseReasonDestroyed, "")
	}

	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	err = m.writer.saveNow(sctx, s.snapshot())
	cancel()
	if errors.Is(err, ErrAlreadyExists) {
		// Another node of the cluster records the id as its own, live:
		// it won a race with this create.
		m.abandon(s)
		return SessionRecord{}, fmt.Errorf("session %q: %w", opts.ID, err)
	}
	if err != nil {
		m.abandon(s)
		s.log.Warn("recording the new session failed; not starting it", "err", err)
		return SessionRecord{}, storeFailed(fmt.Errorf("recording session %q: %w", opts.ID, err))
	}
	// An exited session of the id whose end the row replaced may still be
	// telling its plugin to forget it: the plugin knows sessions by id.
	if err := m.deps.releases.wait(ctx, opts.ID); err != nil {
		m.abandon(s)
		return SessionRecord{}, fmt.Errorf("session %q: waiting for the plugin to forget its previous session: %w", opts.ID, err)
	}

	if err := m.destroyedWhileStarting(s); err != nil {
		return SessionRecord{}, err
	}
	p, req, err := m.spawn(s, env, dir, opts)
	if errors.Is(err, errStartAbandoned) {
		// Destroyed (or hung up) while it started, which cancelled the
		// spawn: teardown left the record to this create.
		return SessionRecord{}, m.destroyedWhileStarting(s)
	}
	if err != nil {
		m.abandon(s)
		return SessionRecord{}, err
	}
	// The pump reads a restartable, so that RestartSession can hand it the
	// next process's output after this one's.
	p, r := newRestartable(p, req, opts.Input)

	s.mu.Lock()
	if s.state != stateStarting {
		s.mu.Unlock()
		m.killStarted(p, s.log)
		return SessionRecord{}, m.destroyedWhileStarting(s)
	}
	s.pty, s.envType = p, env.Type
	s.recorder = m.startRecording(s, opts, env)
	s.state = stateRunning
	status := StatusActive
	s.rec.Status = status
	// Under s.mu, so that a client's attach and detach, or the exit,
	// which may all come as soon as the state is running, queue theirs
	// after it.
	s.changed(SessionUpdate{Status: &status})
	rec := s.recLocked()
	s.mu.Unlock()

	m.metrics.created.Inc()
	s.log.Info("session created", "environment_id", opts.EnvironmentID, "type", env.Type)
	// Before the pump runs: a program that exits at once publishes its
	// session_exited from there, and events come in the order they happen.
	m.publish(Event{Type: SessionCreated, SessionID: s.id})
	m.run(s)
	m.typeInput(s, r)
	m.armIdle(s, false)
	return rec, nil
}

// reserveLocked waits until no session of id is being destroyed and
// returns with m.mu held, and no error, when id may be reserved: no live
// session has it (old is an exited one, for the caller to replace). An
// environment being deleted is waited for, within ctx, and one deleted
// since the caller's lookup, whose count was envDeletes, is looked up
// again, outside m.mu and then the count compared again, so that
// DeleteEnvironment, which marks the environment under m.mu once it saw
// no session of its own in the map, and this create do not miss each
// other. On an error m.mu is not held.
func (m *Manager) reserveLocked(ctx context.Context, id, envID string, envDeletes uint64) (old *session, err error) {
	m.mu.Lock()
	for {
		for ch := m.ending[id]; ch != nil && !m.closed; ch = m.ending[id] {
			m.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, fmt.Errorf("session %q is still being destroyed: %w", id, ctx.Err())
			}
			m.mu.Lock()
		}
		if m.closed {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		if ch := m.envDeleting[envID]; ch != nil {
			m.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, fmt.Errorf("environment %q is being deleted: %w", envID, ctx.Err())
			}
			m.mu.Lock()
			continue
		}
		old = m.sessions[id]
		if old != nil && !old.hasExited() {
			m.mu.Unlock()
			return nil, fmt.Errorf("%w: session %q", ErrAlreadyExists, id)
		}
		if m.envDeletes == envDeletes {
			return old, nil
		}
		envDeletes = m.envDeletes
		m.mu.Unlock()
		if _, err := m.lookupEnvironment(ctx, envID); err != nil {
			return nil, err
		}
		m.mu.Lock()
	}
}

// run starts the output pump of s, which runs now.
func (m *Manager) run(s *session) {
	m.metrics.live.Inc()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		s.pump(m.ctx)
		m.metrics.live.Dec()
	}()
}

// destroyedWhileStarting records s, publishes SessionDestroyed and
// returns an error if s was destroyed or hung up while it was starting;
// teardown left both to the create. The error wraps ErrSessionNotFound,
// as a restart's does when its session is destroyed meanwhile: the
// session is gone.
func (m *Manager) destroyedWhileStarting(s *session) error {
	s.mu.Lock()
	if s.state == stateStarting {
		s.mu.Unlock()
		return nil
	}
	status, reason := s.rec.Status, s.rec.StatusReason
	s.mu.Unlock()
	s.changed(SessionUpdate{Status: &status, StatusReason: &reason})
	m.metrics.createFailed.Inc()
	// Its listing said STARTING: a client that follows the events learns
	// it is gone, as of any session destroyed.
	m.publish(Event{Type: SessionDestroyed, SessionID: s.id})
	return fmt.Errorf("%w: session %q was destroyed while starting", ErrSessionNotFound, s.id)
}

// lookupEnvironment returns the environment a session is created in.
func (m *Manager) lookupEnvironment(ctx context.Context, id string) (Environment, error) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	env, err := m.store.GetEnvironment(sctx, id)
	if err != nil {
		if errors.Is(err, ErrEnvironmentNotFound) {
			return Environment{}, fmt.Errorf("%w: %q", ErrEnvironmentNotFound, id)
		}
		return Environment{}, storeFailed(err)
	}
	return env, nil
}

// storeFailed marks err, a store error that is not about the data asked
// for, as ErrStoreUnavailable.
func storeFailed(err error) error {
	if errors.Is(err, ErrStoreUnavailable) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrStoreUnavailable, err)
}

// abandon removes a reservation whose create failed.
func (m *Manager) abandon(s *session) {
	m.mu.Lock()
	if m.sessions[s.id] == s {
		delete(m.sessions, s.id)
	}
	m.mu.Unlock()
	s.mu.Lock()
	s.state = stateDestroyed
	s.mu.Unlock()
	m.metrics.createFailed.Inc()
}
