package core

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// Manager keeps the live sessions: it creates them through the plugins,
// pumps their output into scrollback, attaches clients, and records their
// status in the store.
type Manager struct {
	opts    Options
	store   Store
	plugins Dispatcher
	log     *slog.Logger
	writer  *writer
	events  *bus
	metrics *metrics

	ctx    context.Context // ends when Close is done
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the manager started

	closeOnce sync.Once
	closeErr  error

	mu          sync.Mutex // protects the following
	sessions    map[string]*session
	closed      bool
	attachments int           // attachments not yet closed
	detached    chan struct{} // closed when attachments drops to 0
}

// New returns a Manager. Call Close to stop it.
func New(opts Options) (*Manager, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		opts:     opts,
		store:    opts.Store,
		plugins:  opts.Plugins,
		log:      opts.Logger,
		ctx:      ctx,
		cancel:   cancel,
		sessions: make(map[string]*session),
		metrics:  newMetrics(),
	}
	if opts.Registerer != nil {
		if err := m.metrics.register(opts.Registerer, m); err != nil {
			cancel()
			return nil, fmt.Errorf("core: registering metrics: %w", err)
		}
	}
	m.writer = newWriter(opts.Store, m.log, m.metrics)
	m.events = newBus(func() { m.metrics.eventsDropped.Inc() })
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.writer.run(ctx)
	}()
	return m, nil
}

func (m *Manager) now() time.Time { return m.opts.Now().UTC() }

// Subscribe returns the manager's events until ctx ends or the manager
// closes, when the channel is closed. Events arrive in the order they
// happened. A subscriber that falls more than 256 events behind misses the
// newer events until it catches up; sessions never wait for subscribers.
func (m *Manager) Subscribe(ctx context.Context) <-chan Event {
	return m.events.subscribe(ctx)
}

func (m *Manager) publish(e Event) {
	e.Time = m.now()
	m.events.publish(e)
}

// CreateOptions describe a session to create.
type CreateOptions struct {
	// ID is the session's id; generated when empty. Letters, digits, '.',
	// '_' and '-', at most 128 characters.
	ID            string
	EnvironmentID string
	ProjectID     string
	BranchName    string
	// WorktreePath is the working directory.
	WorktreePath string
	// Command is the argv; empty means the environment's shell.
	Command []string
	// Env holds extra environment variables.
	Env map[string]string
	// Cols and Rows are the terminal's size; zero means 80×24.
	Cols, Rows int
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

func validID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("%w: id %q: use 1 to 128 letters, digits, '.', '_' or '-'", ErrInvalidArgument, id)
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
	if o.Cols == 0 && o.Rows == 0 {
		o.Cols, o.Rows = DefaultCols, DefaultRows
	}
	if err := validSize(o.Cols, o.Rows); err != nil {
		return err
	}
	for k := range o.Env {
		if k == "" || containsAny(k, "=\x00") {
			return fmt.Errorf("%w: env name %q", ErrInvalidArgument, k)
		}
	}
	return nil
}

func containsAny(s, chars string) bool {
	for _, c := range chars {
		if slices.Contains([]rune(s), c) {
			return true
		}
	}
	return false
}

// CreateSession starts a session and returns its record. A duplicate live
// id is ErrAlreadyExists; a session that has exited is replaced. An unknown
// environment is ErrEnvironmentNotFound. Any failure after the plugin was
// asked leaves nothing behind and records the session as ERROR.
func (m *Manager) CreateSession(ctx context.Context, opts CreateOptions) (SessionRecord, error) {
	if err := opts.normalize(); err != nil {
		return SessionRecord{}, err
	}
	now := m.now()
	s := &session{
		id:          opts.ID,
		m:           m,
		log:         m.log.With("session_id", opts.ID),
		pumpDone:    make(chan struct{}),
		ring:        newRing(m.opts.ScrollbackBytes),
		attachments: make(map[*Attachment]struct{}),
		lastActive:  now,
		rec: SessionRecord{
			ID:            opts.ID,
			EnvironmentID: opts.EnvironmentID,
			ProjectID:     opts.ProjectID,
			BranchName:    opts.BranchName,
			WorktreePath:  opts.WorktreePath,
			Status:        StatusActive,
			Cols:          opts.Cols,
			Rows:          opts.Rows,
			LastActiveAt:  now,
			CreatedAt:     now,
			UpdatedAt:     now,
		},
	}

	// Reserve the id before anything else, so that two concurrent creates
	// of one id cannot both spawn.
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return SessionRecord{}, ErrClosed
	}
	old := m.sessions[opts.ID]
	if old != nil && !old.hasExited() {
		m.mu.Unlock()
		return SessionRecord{}, fmt.Errorf("%w: session %q", ErrAlreadyExists, opts.ID)
	}
	m.sessions[opts.ID] = s
	m.mu.Unlock()
	if old != nil {
		m.teardown(ctx, old, CloseNormal, CloseReasonDestroyed, "")
	}

	p, envType, err := m.spawn(ctx, s, opts)
	if err != nil {
		m.abandon(s)
		return SessionRecord{}, err
	}

	s.mu.Lock()
	if s.state != stateStarting {
		// Destroyed or hung up while it was starting.
		s.mu.Unlock()
		m.killStarted(p, s.log)
		m.metrics.createFailed.Inc()
		return SessionRecord{}, fmt.Errorf("session %q was destroyed while starting", opts.ID)
	}
	s.pty, s.envType = p, envType
	s.state = stateRunning
	rec := s.rec
	s.mu.Unlock()

	m.writer.save(rec)
	m.metrics.created.Inc()
	m.metrics.live.Inc()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		s.pump(m.ctx)
		m.metrics.live.Dec()
	}()
	m.armIdle(s, false)
	s.log.Info("session created", "environment_id", opts.EnvironmentID, "type", envType)
	m.publish(Event{Type: SessionCreated, SessionID: s.id})
	return rec, nil
}

// spawn asks the environment's plugin for the session's PTY. Errors before
// the plugin is asked are returned as they are; later ones are recorded.
func (m *Manager) spawn(ctx context.Context, s *session, opts CreateOptions) (shared.PTY, string, error) {
	env, err := m.store.GetEnvironment(ctx, opts.EnvironmentID)
	if err != nil {
		if errors.Is(err, ErrEnvironmentNotFound) {
			return nil, "", fmt.Errorf("%w: %q", ErrEnvironmentNotFound, opts.EnvironmentID)
		}
		return nil, "", err
	}
	adapter, err := m.plugins.Environment(env.Type)
	if err != nil {
		return nil, "", m.failed(s, err)
	}
	p, err := adapter.Spawn(ctx, shared.SpawnRequest{
		SessionID:       opts.ID,
		EnvironmentID:   env.ID,
		EnvironmentType: env.Type,
		Config:          env.Config,
		Dir:             opts.WorktreePath,
		Command:         opts.Command,
		Env:             opts.Env,
		Size:            shared.Size{Cols: uint16(opts.Cols), Rows: uint16(opts.Rows)},
	})
	if err != nil {
		return nil, "", m.failed(s, err)
	}
	return p, env.Type, nil
}

// failed records a session that could not be started as ERROR and says so.
func (m *Manager) failed(s *session, err error) error {
	reason := err.Error()
	s.mu.Lock()
	s.rec.Status, s.rec.StatusReason = StatusError, reason
	rec := s.rec
	s.mu.Unlock()
	m.writer.save(rec)
	s.log.Warn("session failed to start", "err", err)
	m.publish(Event{Type: SessionError, SessionID: s.id, Err: err})
	return fmt.Errorf("%w: %w", ErrSpawn, err)
}

// ErrSpawn wraps every error of an environment's plugin while creating a
// session; errors.Is also finds the plugin's own error (shared.ErrX).
var ErrSpawn = errors.New("starting the session failed")

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

// killTimeout bounds how long destruction waits for a killed session's
// output to end before it cleans up anyway.
const killTimeout = 10 * time.Second

func (s *session) hasExited() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == stateExited
}

// GetSession returns a session's record: a live one from memory, an ended
// one from the store.
func (m *Manager) GetSession(ctx context.Context, id string) (SessionRecord, error) {
	m.mu.Lock()
	s := m.sessions[id]
	m.mu.Unlock()
	if s != nil {
		s.mu.Lock()
		starting := s.state == stateStarting
		s.mu.Unlock()
		if !starting {
			return s.snapshot(), nil
		}
	}
	rec, err := m.store.GetSession(ctx, id)
	if err != nil {
		if rec, ok := m.writer.pendingRecord(id); ok {
			return rec, nil
		}
		if errors.Is(err, ErrSessionNotFound) {
			return SessionRecord{}, fmt.Errorf("%w: %q", ErrSessionNotFound, id)
		}
		return SessionRecord{}, err
	}
	m.writer.overlay(&rec)
	return rec, nil
}

// ListSessions returns every session the store knows, live ones as they are
// in memory, in creation order.
func (m *Manager) ListSessions(ctx context.Context) ([]SessionRecord, error) {
	recs, err := m.store.ListSessions(ctx)
	if err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(recs))
	for i := range recs {
		seen[recs[i].ID] = true
		m.writer.overlay(&recs[i])
	}
	m.mu.Lock()
	live := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		live = append(live, s)
	}
	m.mu.Unlock()
	for _, s := range live {
		rec := s.snapshot()
		if s.hasStarted() {
			if seen[rec.ID] {
				for i := range recs {
					if recs[i].ID == rec.ID {
						recs[i] = rec
					}
				}
			} else {
				recs = append(recs, rec)
			}
		}
	}
	slices.SortStableFunc(recs, func(a, b SessionRecord) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return recs, nil
}

func (s *session) hasStarted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state != stateStarting
}

// DestroySession ends a session: it closes every client with "Session
// destroyed", kills the process, has the plugin clean up, and records the
// session as TERMINATED. A failing step is logged and destruction goes on.
// An unknown or already destroyed id is not an error.
func (m *Manager) DestroySession(ctx context.Context, id string) error {
	m.mu.Lock()
	s := m.sessions[id]
	if s != nil {
		delete(m.sessions, id)
	}
	m.mu.Unlock()
	if s == nil {
		return nil
	}
	m.teardown(ctx, s, CloseNormal, CloseReasonDestroyed, "")
	return nil
}

// teardown destroys s, which the caller has taken out of the map.
func (m *Manager) teardown(ctx context.Context, s *session, code int, reason, statusReason string) {
	s.mu.Lock()
	prev := s.state
	if prev == stateDestroyed {
		s.mu.Unlock()
		return
	}
	s.state = stateDestroyed
	s.closeCode, s.closeReason = code, reason
	// On shutdown, clients get the session's last output and its exit
	// before the close; a destroyed session just closes them.
	s.drain = code == CloseGoingAway && prev == stateRunning
	for _, t := range []*time.Timer{s.idleTimer, s.lingerTimer} {
		if t != nil {
			t.Stop()
		}
	}
	s.idleTimer, s.lingerTimer = nil, nil
	s.wakeAll()
	s.mu.Unlock()
	if prev == stateStarting {
		// CreateSession sees the state and cleans up what it spawned.
		return
	}

	if prev == stateRunning {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
		if err := s.pty.Kill(kctx); err != nil {
			s.log.Warn("kill failed; destroying anyway", "err", err)
		}
		select {
		case <-s.pumpDone:
		case <-kctx.Done():
			s.log.Warn("session output did not end after kill; cleaning up anyway")
			s.mu.Lock()
			s.drain = false // no exit is coming: close the clients now
			s.wakeAll()
			s.mu.Unlock()
		}
		cancel()
	}
	s.release()

	zero := 0
	s.mu.Lock()
	if s.rec.Status != StatusError {
		// An abnormal end stays recorded as such.
		s.rec.Status, s.rec.StatusReason = StatusTerminated, statusReason
	}
	s.rec.ActiveConnections = 0
	status := s.rec.Status
	rec := s.rec
	s.mu.Unlock()
	m.writer.update(s.id, SessionUpdate{Status: &status, StatusReason: &rec.StatusReason, ActiveConnections: &zero})
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if err := m.writer.flush(fctx); err != nil {
		s.log.Warn("recording the destroyed session failed; will retry", "err", err)
	}
	cancel()
	s.log.Info("session destroyed")
	m.publish(Event{Type: SessionDestroyed, SessionID: s.id})
}

// linger keeps an exited session attachable for Options.Linger.
func (m *Manager) linger(s *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateExited {
		return
	}
	s.lingerTimer = time.AfterFunc(m.opts.Linger, func() {
		m.mu.Lock()
		if m.sessions[s.id] != s || m.closed {
			m.mu.Unlock()
			return
		}
		delete(m.sessions, s.id)
		m.mu.Unlock()
		s.mu.Lock()
		s.state = stateDestroyed
		s.closeCode, s.closeReason = CloseNormal, CloseReasonExited
		s.wakeAll()
		s.mu.Unlock()
	})
}

// attachable reports whether Attach would find the session, without
// attaching.
func (m *Manager) attachable(id string) error {
	m.mu.Lock()
	s := m.sessions[id]
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if s == nil {
		return fmt.Errorf("%w: %q", ErrSessionNotFound, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stateStarting || s.state == stateDestroyed {
		return fmt.Errorf("%w: %q", ErrSessionNotFound, id)
	}
	return nil
}

// Attach adds a client to a live or lingering session. The session becomes
// ACTIVE and its idle timer stops. Close the attachment to detach.
func (m *Manager) Attach(ctx context.Context, id string) (*Attachment, error) {
	m.mu.Lock()
	s := m.sessions[id]
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if s == nil {
		return nil, fmt.Errorf("%w: %q", ErrSessionNotFound, id)
	}
	// Counted before it exists (m.mu is never taken under s.mu), so Close
	// cannot miss it.
	m.countAttachment(1)
	s.mu.Lock()
	if s.state == stateStarting || s.state == stateDestroyed {
		s.mu.Unlock()
		m.countAttachment(-1)
		return nil, fmt.Errorf("%w: %q", ErrSessionNotFound, id)
	}
	p := s.ring.replayPoint()
	a := &Attachment{
		s:        s,
		wakeC:    make(chan struct{}, 1),
		off:      p.off,
		preamble: p.modes.preamble(),
		hello: Hello{
			SessionID: id,
			Size:      shared.Size{Cols: uint16(s.rec.Cols), Rows: uint16(s.rec.Rows)},
			Offset:    p.off,
		},
	}
	s.attachments[a] = struct{}{}
	n := len(s.attachments)
	s.rec.ActiveConnections = n
	u := SessionUpdate{ActiveConnections: &n}
	if s.state == stateRunning {
		if s.idleTimer != nil {
			s.idleTimer.Stop()
			s.idleTimer = nil
		}
		st := StatusActive
		s.rec.Status = st
		u.Status = &st
	}
	s.mu.Unlock()
	m.writer.update(id, u)
	m.metrics.clients.Inc()
	return a, nil
}

// countAttachment tracks the open attachments, for Close to wait on.
func (m *Manager) countAttachment(delta int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attachments += delta
	if m.attachments == 0 && m.detached != nil {
		close(m.detached)
		m.detached = nil
	}
}

// detach removes a from its session; the last one out makes the session
// IDLE and arms its idle timer.
func (m *Manager) detach(a *Attachment) {
	s := a.s
	s.mu.Lock()
	a.closed = true
	if _, ok := s.attachments[a]; !ok {
		s.mu.Unlock()
		return
	}
	delete(s.attachments, a)
	n := len(s.attachments)
	live := s.state == stateRunning || s.state == stateExited
	if live {
		s.rec.ActiveConnections = n
	}
	var u SessionUpdate
	u.ActiveConnections = &n
	if n == 0 && s.state == stateRunning {
		st := StatusIdle
		s.rec.Status = st
		u.Status = &st
	}
	s.mu.Unlock()
	m.countAttachment(-1)
	m.metrics.clients.Dec()
	if live {
		m.writer.update(s.id, u)
	}
	if n == 0 {
		m.armIdle(s, true)
	}
}

// armIdle starts s's idle timer if s is running with no client. lastLeft
// says the last client just left (only then does DestroyWhenIdle apply).
func (m *Manager) armIdle(s *session, lastLeft bool) {
	timeout := m.opts.IdleTimeout
	if timeout == NoIdleTimeout || (timeout == DestroyWhenIdle && !lastLeft) {
		return
	}
	if timeout == DestroyWhenIdle {
		timeout = 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning || len(s.attachments) > 0 {
		return
	}
	if s.idleTimer != nil {
		s.idleTimer.Stop()
	}
	s.idleTimer = time.AfterFunc(timeout, func() { m.idleExpired(s) })
}

func (m *Manager) idleExpired(s *session) {
	m.mu.Lock()
	if m.closed || m.sessions[s.id] != s {
		m.mu.Unlock()
		return
	}
	s.mu.Lock()
	idle := s.state == stateRunning && len(s.attachments) == 0
	s.mu.Unlock()
	if !idle {
		m.mu.Unlock()
		return
	}
	delete(m.sessions, s.id)
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()
	s.log.Info("session idle too long; destroying", "idle_timeout", m.opts.IdleTimeout)
	m.teardown(m.ctx, s, CloseNormal, CloseReasonDestroyed, ReasonIdleTimeout)
}

// Close hangs up every session (each attached client receives the session's
// remaining output, its exit, and close code 1001), records their status,
// waits — within ctx — for the clients to detach, and waits for every
// goroutine the manager started. It is safe to call more than once; later
// calls return the first call's result.
func (m *Manager) Close(ctx context.Context) error {
	m.closeOnce.Do(func() { m.closeErr = m.close(ctx) })
	return m.closeErr
}

func (m *Manager) close(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	all := make([]*session, 0, len(m.sessions))
	for id, s := range m.sessions {
		all = append(all, s)
		delete(m.sessions, id)
	}
	m.mu.Unlock()

	var wg sync.WaitGroup
	for _, s := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.teardown(ctx, s, CloseGoingAway, CloseReasonShutdown, ReasonServerShutdown)
		}()
	}
	wg.Wait()

	// Give the clients the time (within ctx) to receive their sessions'
	// last output, exit and close, and to detach.
	m.mu.Lock()
	var detached chan struct{}
	if m.attachments > 0 {
		detached = make(chan struct{})
		m.detached = detached
	}
	m.mu.Unlock()
	if detached != nil {
		select {
		case <-detached:
		case <-ctx.Done():
			m.log.Warn("clients did not all detach before the shutdown deadline")
		}
	}

	m.cancel()
	m.wg.Wait()
	err := m.writer.flush(ctx)
	m.events.close()
	if err != nil {
		return fmt.Errorf("core: writing final session status: %w", err)
	}
	return nil
}
