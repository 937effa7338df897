package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// fakePlugins serves environment types from a map. Unlike
// StaticEnvironments it is no PluginController.
type fakePlugins map[string]shared.Environment

func (f fakePlugins) Environment(t string) (shared.Environment, error) {
	if e, ok := f[t]; ok {
		return e, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrNoPlugin, t)
}

// memStore is an in-memory Store whose writes can be made to fail.
type memStore struct {
	mu       sync.Mutex
	envs     map[string]Environment
	envOrder []string
	sessions map[string]SessionRecord
	order    []string
	failNext int // fail this many session writes
	writes   int
}

func newMemStore() *memStore {
	return &memStore{envs: map[string]Environment{}, sessions: map[string]SessionRecord{}}
}

var errStoreDown = errors.New("store is down")

func (s *memStore) CreateEnvironment(_ context.Context, env Environment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.envs[env.ID]; ok {
		return ErrAlreadyExists
	}
	s.envs[env.ID] = env
	s.envOrder = append(s.envOrder, env.ID)
	return nil
}

func (s *memStore) GetEnvironment(_ context.Context, id string) (Environment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	env, ok := s.envs[id]
	if !ok {
		return Environment{}, ErrEnvironmentNotFound
	}
	return env, nil
}

func (s *memStore) ListEnvironments(context.Context) ([]Environment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Environment
	for _, id := range s.envOrder {
		if env, ok := s.envs[id]; ok {
			out = append(out, env)
		}
	}
	return out, nil
}

func (s *memStore) DeleteEnvironment(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.envs[id]; !ok {
		return ErrEnvironmentNotFound
	}
	delete(s.envs, id)
	return nil
}

// failWrites makes the next n session writes fail (0: none), as a store
// that is down.
func (s *memStore) failWrites(n int) {
	s.mu.Lock()
	s.failNext = n
	s.mu.Unlock()
}

func (s *memStore) fail() error {
	s.writes++
	if s.failNext > 0 {
		s.failNext--
		return errStoreDown
	}
	return nil
}

func (s *memStore) SaveSession(_ context.Context, rec SessionRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail(); err != nil {
		return err
	}
	if _, ok := s.sessions[rec.ID]; !ok {
		s.order = append(s.order, rec.ID)
	}
	s.sessions[rec.ID] = rec
	return nil
}

func (s *memStore) UpdateSession(_ context.Context, id string, u SessionUpdate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail(); err != nil {
		return err
	}
	rec, ok := s.sessions[id]
	if !ok {
		return ErrSessionNotFound
	}
	u.ApplyTo(&rec)
	s.sessions[id] = rec
	return nil
}

func (s *memStore) GetSession(_ context.Context, id string) (SessionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.sessions[id]
	if !ok {
		return SessionRecord{}, ErrSessionNotFound
	}
	return rec, nil
}

func (s *memStore) ListSessions(_ context.Context, statuses ...Status) ([]SessionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SessionRecord
	for _, id := range s.order {
		rec := s.sessions[id]
		if len(statuses) == 0 || slices.Contains(statuses, rec.Status) {
			out = append(out, rec)
		}
	}
	return out, nil
}

func (s *memStore) row(t *testing.T, id string) SessionRecord {
	t.Helper()
	rec, err := s.GetSession(context.Background(), id)
	if err != nil {
		t.Fatalf("store row %q: %v", id, err)
	}
	return rec
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// harness is a Manager over a fake environment and an in-memory store.
type harness struct {
	m     *Manager
	env   *fakeenv.Env
	store *memStore
	// closeFailed: the test's own Close failed, as it expected; the
	// cleanup's (which returns that result) is not checked.
	closeFailed bool
}

func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{env: &fakeenv.Env{}, store: newMemStore()}
	h.store.envs["fake"] = Environment{ID: "fake", Name: "fake", Type: "FAKE"}
	h.store.envOrder = []string{"fake"}
	opts := Options{Store: h.store, Plugins: fakePlugins{"FAKE": h.env}, IdleTimeout: NoIdleTimeout}
	if mod != nil {
		mod(&opts)
	}
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil && !h.closeFailed {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

func (h *harness) create(t *testing.T, id string) (SessionRecord, *fakeenv.PTY) {
	t.Helper()
	rec, err := h.m.CreateSession(context.Background(), CreateOptions{ID: id, EnvironmentID: "fake"})
	if err != nil {
		t.Fatalf("CreateSession(%q): %v", id, err)
	}
	return rec, h.env.Last(t)
}

// idleTimer returns session id's idle timer, nil if none runs.
func (h *harness) idleTimer(id string) *time.Timer {
	h.m.mu.Lock()
	s := h.m.sessions[id]
	h.m.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.idleTimer
}

func (h *harness) attach(t *testing.T, id string) *Attachment {
	t.Helper()
	a, err := h.m.Attach(context.Background(), id)
	if err != nil {
		t.Fatalf("Attach(%q): %v", id, err)
	}
	t.Cleanup(a.Close)
	return a
}

// collect reads output frames from a until want bytes arrived, returning
// them and failing on any other frame kind but resize.
func collect(t *testing.T, a *Attachment, want int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []byte
	buf := make([]byte, 4096)
	for len(got) < want {
		f, err := a.Next(ctx, buf)
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", len(got), want, err)
		}
		switch f.Kind {
		case FrameOutput:
			got = append(got, f.Data...)
		case FrameResize:
		default:
			t.Fatalf("after %d bytes: unexpected frame %+v", len(got), f)
		}
	}
	return got
}

// nextFrame returns the next frame that is not output or resize, with the
// output that came before it.
func nextFrame(t *testing.T, a *Attachment) (Frame, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []byte
	buf := make([]byte, 4096)
	for {
		f, err := a.Next(ctx, buf)
		if err != nil {
			t.Fatalf("waiting for a frame: %v", err)
		}
		switch f.Kind {
		case FrameOutput:
			out = append(out, f.Data...)
		case FrameResize:
		default:
			return f, out
		}
	}
}

// tryAttach attaches to id and detaches again, returning Attach's error.
func tryAttach(m *Manager, id string) error {
	a, err := m.Attach(context.Background(), id)
	if err == nil {
		a.Close()
	}
	return err
}

// errDetached is what a keptPTY's Read returns once it was detached.
var errDetached = errors.New("fake: the host's stream was detached")

// keptPTY is a host-side PTY of a session a plugin keeps: Read returns
// the output kept first, then what the test writes through the fakeenv.PTY
// it embeds. It is a shared.Detacher: Detach ends the host's stream, Read
// fails from then on, and Close no longer reaches the plugin.
type keptPTY struct {
	*fakeenv.PTY

	mu       sync.Mutex
	kept     []byte // returned by Read before the live output
	detaches int

	// closeGate, when set before the session ends, holds the plugin's
	// cleanup (Close before Detach) until it is closed; closing says a
	// cleanup began.
	closeGate chan struct{}
	closing   atomic.Bool
}

var _ shared.Detacher = (*keptPTY)(nil)

func newKeptPTY(req shared.SpawnRequest, kept []byte) *keptPTY {
	return &keptPTY{PTY: fakeenv.NewPTY(req), kept: slices.Clone(kept)}
}

func (p *keptPTY) Read(b []byte) (int, error) {
	p.mu.Lock()
	if p.detaches > 0 {
		p.mu.Unlock()
		return 0, errDetached
	}
	if len(p.kept) > 0 {
		n := copy(b, p.kept)
		p.kept = p.kept[n:]
		p.mu.Unlock()
		return n, nil
	}
	p.mu.Unlock()
	n, err := p.PTY.Read(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.detaches > 0 {
		return n, errDetached
	}
	return n, err
}

// Close after Detach releases the host's side only, as the SDK's does: it
// is not counted. Before, it is the plugin's cleanup.
func (p *keptPTY) Close() error {
	p.mu.Lock()
	detached := p.detaches > 0
	p.mu.Unlock()
	if detached {
		return nil
	}
	p.closing.Store(true)
	if p.closeGate != nil {
		<-p.closeGate
	}
	return p.PTY.Close()
}

// Detach counts the call and ends the reads.
func (p *keptPTY) Detach() {
	p.mu.Lock()
	p.detaches++
	p.mu.Unlock()
	p.PTY.Crash() // wakes a Read waiting for output
}

// Detaches returns how many times Detach was called.
func (p *keptPTY) Detaches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.detaches
}

// fakeKeeper is a shared.Keeper over sessions the test says a plugin kept.
type fakeKeeper struct {
	mu       sync.Mutex
	kept     map[string]*keptSession
	failWith map[string]error    // Attach of these ids fails
	failOnce map[string]error    // the first Attach of these ids fails
	attached map[string]*keptPTY // the PTY of each id's last Attach
	offsets  map[string]int64    // the offset each id's last Attach asked for
	order    []string            // ids in the order kept
	// answer, when it has an id, is the offset Attach answers for it,
	// whatever it keeps: a plugin's lie.
	answer map[string]int64
}

var _ shared.Keeper = (*fakeKeeper)(nil)

// keptSession is a session a fakeKeeper keeps: its output from
// StartOffset on, and its exit, if it ended.
type keptSession struct {
	shared.KeptSession
	out []byte
}

func newFakeKeeper() *fakeKeeper {
	return &fakeKeeper{
		kept:     map[string]*keptSession{},
		failWith: map[string]error{},
		failOnce: map[string]error{},
		attached: map[string]*keptPTY{},
		offsets:  map[string]int64{},
		answer:   map[string]int64{},
	}
}

// keep makes the keeper hold session id, of type FAKE, whose output from
// start on is out, ended with exit unless exit is nil.
func (k *fakeKeeper) keep(id string, start int64, out []byte, exit *ExitStatus) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.kept[id] = &keptSession{
		KeptSession: shared.KeptSession{
			ID: id, EnvironmentID: "fake", EnvironmentType: "FAKE",
			StartOffset: start, EndOffset: start + int64(len(out)), Exit: exit,
		},
		out: slices.Clone(out),
	}
	k.order = append(k.order, id)
}

func (k *fakeKeeper) Hold(context.Context, time.Duration) (func(), error) { return func() {}, nil }

func (k *fakeKeeper) Sessions(context.Context) ([]shared.KeptSession, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []shared.KeptSession
	for _, id := range k.order {
		out = append(out, k.kept[id].KeptSession)
	}
	return out, nil
}

// Attach returns a keptPTY that reads the output kept from off (or from
// the oldest byte kept), then live output and the exit.
func (k *fakeKeeper) Attach(_ context.Context, id string, off int64) (shared.PTY, int64, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.failWith[id]; err != nil {
		return nil, 0, err
	}
	if err := k.failOnce[id]; err != nil {
		delete(k.failOnce, id)
		return nil, 0, err
	}
	ks := k.kept[id]
	if ks == nil {
		return nil, 0, fmt.Errorf("fake keeper: %q: %w", id, shared.ErrSessionNotFound)
	}
	start := min(max(off, ks.StartOffset), ks.EndOffset)
	p := newKeptPTY(shared.SpawnRequest{SessionID: id, EnvironmentType: "FAKE"}, ks.out[start-ks.StartOffset:])
	if ks.Exit != nil {
		p.End(*ks.Exit)
	}
	k.attached[id], k.offsets[id] = p, off
	if a, ok := k.answer[id]; ok {
		return p, a, nil
	}
	return p, start, nil
}

// pty returns the PTY of id's last Attach; it fails the test if there is
// none.
func (k *fakeKeeper) pty(t *testing.T, id string) *keptPTY {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	p := k.attached[id]
	if p == nil {
		t.Fatalf("fake keeper: %q was not attached", id)
	}
	return p
}

// survivingPlugins is a Dispatcher that reattached to plugin processes:
// its Survivors are the sessions its keeper keeps, and err, if set, is
// returned with them.
type survivingPlugins struct {
	Dispatcher
	keeper *fakeKeeper
	err    error
}

var _ SurvivorSource = survivingPlugins{}

func (s survivingPlugins) Survivors(ctx context.Context) ([]Survivor, error) {
	kept, _ := s.keeper.Sessions(ctx)
	out := make([]Survivor, 0, len(kept))
	for _, ks := range kept {
		out = append(out, Survivor{KeptSession: ks, Keeper: s.keeper})
	}
	return out, s.err
}
