package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// This file restarts a session in place (RestartSession) and types a
// session's initial input (CreateOptions.Input). Both work through
// restartable, the PTY every created session's pump reads: it hands the
// pump the next process's output after the last one's, so the session —
// its ring, its offsets, its attachments — stays the same object.

// SessionRestarted: a session's process was replaced by a new one
// (RestartSession); the session, its id and its clients stay. Exit says
// how the old process ended.
const SessionRestarted EventType = "session_restarted"

// ErrSessionEnded is returned by RestartSession for a session whose process
// has ended: create it again under the same id instead.
var ErrSessionEnded = errors.New("session has ended")

// ErrRestartInProgress is returned by RestartSession while the session is
// being restarted already.
var ErrRestartInProgress = errors.New("a restart of the session is in progress")

// RestartOptions change what a restarted session runs. The zero value
// restarts it as it was created.
type RestartOptions struct {
	// Command, when not nil, replaces the session's argv; an empty, non-nil
	// Command means the environment's shell.
	Command []string
	// Env, when not nil, replaces the session's extra variables whole.
	Env map[string]string
}

// validate checks o as CreateOptions checks its own fields.
func (o RestartOptions) validate() error {
	if len(o.Command) > 0 && o.Command[0] == "" {
		return fmt.Errorf("%w: command[0] is empty; name the program to run, or send an empty command for the environment's shell", ErrInvalidArgument)
	}
	for i, arg := range o.Command {
		if strings.IndexByte(arg, 0) >= 0 {
			return fmt.Errorf("%w: command[%d] holds a NUL byte", ErrInvalidArgument, i)
		}
	}
	if err := shared.CheckEnv(o.Env); err != nil {
		return fmt.Errorf("%w: env: %v", ErrInvalidArgument, err)
	}
	return nil
}

// RestartSession kills the running process of session id and starts a new
// one under the same id with the same spawn request — environment
// configuration, working directory, command, variables and initial input
// as at creation, at the session's current size — or o's command and
// variables. The old process's remaining output is delivered first; the
// new process's output continues the session's offsets, so attached
// clients stay attached and read on. The record's restarts count goes up
// by one, and SessionRestarted is published.
//
// A session that is not running is ErrSessionEnded when it has ended
// (exited, destroyed, or ended under an earlier server: its record is
// TERMINATED or ERROR) or ErrSessionNotFound (unknown, starting); one already being
// restarted is ErrRestartInProgress. When the new process cannot be
// started the session ends as ERROR, with the reason, and the error wraps
// ErrSpawn. A new command (o.Command) is recorded as the session's.
//
// A session taken up from a previous server (Reconcile) is restarted from
// its record: its stored command, working directory and unset_env names,
// with its environment's configuration as the store holds it now. Its
// variables (CreateOptions.Env) and initial input were never stored, so
// it gets o.Env only, and no input; after its first restart here, later
// restarts reuse what that one was given.
func (m *Manager) RestartSession(ctx context.Context, id string, o RestartOptions) (SessionRecord, error) {
	if err := o.validate(); err != nil {
		return SessionRecord{}, err
	}
	m.mu.Lock()
	s := m.sessions[id]
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return SessionRecord{}, ErrClosed
	}
	if s == nil {
		_, ended, err := m.EndedSession(ctx, id)
		if err != nil {
			return SessionRecord{}, err
		}
		if ended {
			return SessionRecord{}, fmt.Errorf("%w: session %q: create it again with the same id", ErrSessionEnded, id)
		}
		return SessionRecord{}, fmt.Errorf("%w: %q", ErrSessionNotFound, id)
	}
	s.mu.Lock()
	state, p := s.state, s.pty
	s.mu.Unlock()
	switch state {
	case stateExited:
		return SessionRecord{}, fmt.Errorf("%w: session %q: create it again with the same id", ErrSessionEnded, id)
	case stateRunning:
	default:
		return SessionRecord{}, fmt.Errorf("%w: %q", ErrSessionNotFound, id)
	}
	r, ok := ptyRestartable(p)
	if !ok {
		// Every running session's PTY is one; kept for safety.
		return SessionRecord{}, fmt.Errorf("%w: session %q cannot be restarted; destroy and create it", shared.ErrUnsupported, id)
	}
	// As at create: a variable the session is to be without cannot be
	// given to it too.
	unset := s.snapshot().UnsetEnv
	for _, k := range unset {
		if _, ok := o.Env[k]; ok {
			return SessionRecord{}, fmt.Errorf("%w: variable %s is in env and in the session's unset_env", ErrInvalidArgument, k)
		}
	}
	var fromRecord *shared.SpawnRequest
	if r.recordOnly() {
		req, err := m.requestFromRecord(ctx, s.snapshot())
		if err != nil {
			return SessionRecord{}, err
		}
		fromRecord = &req
	}
	rs, req, err := r.begin()
	if errors.Is(err, ErrSessionEnded) {
		return SessionRecord{}, fmt.Errorf("%w: session %q: create it again with the same id", ErrSessionEnded, id)
	}
	if err != nil {
		return SessionRecord{}, fmt.Errorf("%w: session %q", err, id)
	}
	if fromRecord != nil {
		req = *fromRecord
	}
	if o.Command != nil {
		req.Command = slices.Clone(o.Command)
	}
	if o.Env != nil {
		req.Env = m.withoutNeverEnv(maps.Clone(o.Env))
	}

	// Kill the old process; the pump reads the rest of its output and
	// parks in the restartable's Read.
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
	defer cancel()
	if err := r.killCurrent(kctx); err != nil {
		s.log.Warn("kill before restart failed", "err", err)
	}
	select {
	case <-rs.drained:
	case <-kctx.Done():
		r.abort(rs, ExitStatus{Code: -1, Reason: "restart failed: the old process's output did not end after the kill"})
		return SessionRecord{}, fmt.Errorf("%w: session %q: the old process did not end", ErrSpawn, id)
	}
	if !r.parked(rs) {
		// Destroyed or hung up meanwhile: the pump ended with the old
		// process.
		return SessionRecord{}, fmt.Errorf("%w: %q was destroyed while restarting", ErrSessionNotFound, id)
	}
	old := r.current()
	oldExit, err := old.Wait(kctx)
	if err != nil {
		oldExit = ExitStatus{Code: -1}
	}
	if err := r.closeOld(old); err != nil {
		s.log.Warn("adapter cleanup failed", "err", err)
	}

	// The pump is parked: the ring's end is the new process's first offset.
	s.mu.Lock()
	req.OutputOffset = s.ring.End()
	req.Size = shared.Size{Cols: uint16(s.rec.Cols), Rows: uint16(s.rec.Rows)}
	envType := s.envType
	s.mu.Unlock()
	// The new program starts on what it takes for a fresh terminal: a
	// replay from after here restores its modes, not the old one's. The
	// pump, which owns the scanner, is parked until install or abort.
	s.scanner = newScannerAt(req.OutputOffset, s.deps.scrollbackBytes)

	np, err := m.spawnRestart(s, envType, req)
	if errors.Is(err, errStartAbandoned) {
		// Destroyed meanwhile: the session ends as destroyed, as when the
		// destroy comes between the spawn and the install.
		r.abort(rs, oldExit)
		return SessionRecord{}, fmt.Errorf("%w: %q was destroyed while restarting", ErrSessionNotFound, id)
	}
	if err != nil {
		r.abort(rs, ExitStatus{Code: -1, Reason: "restart failed: " + err.Error()})
		s.log.Warn("restart failed", "err", err)
		// The cause is kept as text only: the old process is gone and the
		// session has ended, so the plugin's sentinel (an invalid argument
		// for a program that does not exist, say) must not make the
		// failure read as a request refused before anything was done.
		return SessionRecord{}, fmt.Errorf("%w: session %q has ended: restart failed: %v", ErrSpawn, id, err)
	}
	// The mark goes in before the pump reads on: once it has, the new
	// process's output may be committed, and handed to a client (even
	// written to it directly, direct.go) at once. A client that read
	// past the mark's offset would never be told. A client that looks
	// meanwhile may be told of the restart a little early, and, if the
	// session is destroyed before the install, of one that did not
	// happen; it is closed next.
	// So is the record's count (and command): whoever reads the session
	// on hearing session_restarted sees this restart counted. Both are
	// undone if the session is destroyed before the install.
	s.mu.Lock()
	r.marks = append(r.marks, req.OutputOffset)
	if len(r.marks) > maxRestartMarks {
		r.marks = slices.Delete(r.marks, 0, len(r.marks)-maxRestartMarks)
	}
	oldCommand := s.rec.Command
	s.rec.Restarts++
	n := s.rec.Restarts
	u := SessionUpdate{Restarts: &n}
	if o.Command != nil {
		s.rec.Command = slices.Clone(o.Command)
		cmd := slices.Clone(o.Command)
		u.Command = &cmd
	}
	s.mu.Unlock()
	// session_restarted goes out as the install succeeds, before the pump
	// reads on: the new process's exit may publish session_exited from
	// there, and events come in the order they happen.
	restarted := func() { m.publish(Event{Type: SessionRestarted, SessionID: id, Exit: &oldExit}) }
	if !r.install(rs, np, req, oldExit, restarted) {
		s.mu.Lock()
		if i := len(r.marks) - 1; i >= 0 && r.marks[i] == req.OutputOffset {
			r.marks = r.marks[:i]
		}
		s.rec.Restarts--
		s.rec.Command = oldCommand
		s.mu.Unlock()
		m.killStarted(np, s.log)
		return SessionRecord{}, fmt.Errorf("%w: %q was destroyed while restarting", ErrSessionNotFound, id)
	}
	testHookRestartInstalled()

	s.mu.Lock()
	s.wakeAll()
	s.changed(u)
	rec := s.recLocked()
	s.mu.Unlock()
	m.typeInput(s, r)
	s.log.Info("session restarted", "restarts", n, "offset", req.OutputOffset, "old_exit_code", oldExit.Code)
	return rec, nil
}

// spawnRestart starts the new process of session s's restart
// (startProcess), bounded by the manager's life, not the caller's: the old
// process is gone, so a caller that goes away now (a client that hung up,
// ^C on 'ptyhost restart') must not end the session with it.
func (m *Manager) spawnRestart(s *session, envType string, req shared.SpawnRequest) (shared.PTY, error) {
	adapter, err := m.plugins.Environment(envType)
	if err != nil {
		return nil, err
	}
	return m.startProcess(m.ctx, s, adapter, req, stateRunning)
}

// testHookRestartInstalled runs in RestartSession after the new process
// is installed, the pump free to read on; tests set it.
var testHookRestartInstalled = func() {}

// restartMark returns the offset of the first restart at or after off
// that is later than seen, the last one an attachment was told of: the
// attachment, at off, is to be told of the restart (a "restarted"
// message) when it reaches it, and read no output across it before. The
// attachment's poll calls it. s.mu must be held.
func (s *session) restartMark(off, seen int64) (int64, bool) {
	r, ok := ptyRestartable(s.pty)
	if !ok {
		return 0, false
	}
	for _, m := range r.marks {
		if m >= off && m > seen {
			return m, true
		}
	}
	return 0, false
}

// requestFromRecord builds the spawn request of a restart of a session
// taken up from a previous server from what its record keeps: command,
// working directory and unset_env names, with its environment's
// configuration and unset_env as the store holds them now and the
// server's never-passed variables. It has no Env (never stored); the
// restart sets Size and OutputOffset.
func (m *Manager) requestFromRecord(ctx context.Context, rec SessionRecord) (shared.SpawnRequest, error) {
	env, err := m.lookupEnvironment(ctx, rec.EnvironmentID)
	if err != nil {
		return shared.SpawnRequest{}, err
	}
	dir, err := m.workdir(env.Type, rec.WorktreePath)
	if err != nil {
		return shared.SpawnRequest{}, err
	}
	return shared.SpawnRequest{
		SessionID:       rec.ID,
		EnvironmentID:   env.ID,
		EnvironmentType: env.Type,
		Config:          env.Config,
		Dir:             dir,
		Command:         slices.Clone(rec.Command),
		UnsetEnv:        m.unsetEnv(append(slices.Clone(env.UnsetEnv), rec.UnsetEnv...)),
		WorkdirRoots:    m.opts.WorkdirRoots,
		ScrollbackBytes: m.opts.ScrollbackBytes,
	}, nil
}

// The initial input's rule: it is typed once the process has written its
// first output and then been quiet for inputQuiet (at most inputMaxWait
// after that first output), or inputSettle after the start when it
// writes nothing.
const (
	inputQuiet   = 100 * time.Millisecond
	inputMaxWait = 2 * time.Second
	inputSettle  = 3 * time.Second
)

// typeInput types the session's initial input (SpawnRequest's, kept by
// r) into its current process, by the rule above, in a goroutine of the
// manager's.
func (m *Manager) typeInput(s *session, r *restartable) {
	r.mu.Lock()
	input, output, cur := r.input(), r.output, r.cur
	r.mu.Unlock()
	if len(input) == 0 {
		return
	}
	m.wg.Go(func() {
		// The input is in this manager's memory only: one stopped to
		// leave its sessions to the next server loses it. Say so.
		lost := func() {
			if m.byDetach.Load() {
				s.log.Warn("the server stopped before the session's initial input was typed; it is not typed, and the next server does not have it")
			}
		}
		settle := time.NewTimer(inputSettle)
		defer settle.Stop()
		select {
		case <-output:
			start := time.Now()
			for {
				r.mu.Lock()
				quiet := time.Since(r.lastWrite)
				r.mu.Unlock()
				if quiet >= inputQuiet || time.Since(start) >= inputMaxWait {
					break
				}
				t := time.NewTimer(inputQuiet - quiet)
				select {
				case <-t.C:
				case <-m.ctx.Done():
					t.Stop()
					lost()
					return
				}
			}
		case <-settle.C:
		case <-m.ctx.Done():
			lost()
			return
		}
		s.mu.Lock()
		running := s.state == stateRunning
		s.mu.Unlock()
		if !running || r.current() != cur {
			return // ended, or restarted: the next process gets its own
		}
		// To cur itself: a restart between the look above and the write
		// must not have the new process typed the old one's input (it
		// gets its own); the old one, gone, takes none.
		if err := s.inputTo(cur, input); err != nil {
			s.log.Warn("typing the initial input failed", "err", err)
		}
	})
}
