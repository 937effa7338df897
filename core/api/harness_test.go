package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/shared"
)

// The API's test harness: a Manager over a fake environment and an
// in-memory store, like core's own (core/fake_test.go). Core's internal
// tests cannot import a package that imports core, so each package keeps
// its own.

// fakeEnv is a shared.Environment whose sessions the test drives by hand.
type fakeEnv struct {
	mu      sync.Mutex
	spawned []*fakePTY
	// spawn, when set, replaces the default behaviour.
	spawn    func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error)
	validate func(cfg json.RawMessage) error
}

func (e *fakeEnv) Info(context.Context) (shared.Info, error) {
	return shared.Info{Name: "fake", Types: []string{"FAKE"}}, nil
}

func (e *fakeEnv) Spawn(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	if e.spawn != nil {
		return e.spawn(ctx, req)
	}
	p := newFakePTY(req)
	e.mu.Lock()
	e.spawned = append(e.spawned, p)
	e.mu.Unlock()
	return p, nil
}

func (e *fakeEnv) ValidateConfig(_ context.Context, _ string, cfg json.RawMessage) error {
	if e.validate != nil {
		return e.validate(cfg)
	}
	return nil
}

func (e *fakeEnv) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.spawned)
}

func (e *fakeEnv) last(t *testing.T) *fakePTY {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.spawned) == 0 {
		t.Fatal("nothing spawned")
	}
	return e.spawned[len(e.spawned)-1]
}

// fakePTY is a terminal whose output the test writes and whose exit the
// test decides.
type fakePTY struct {
	req     shared.SpawnRequest
	outR    *io.PipeReader
	outW    *io.PipeWriter
	input   chan []byte
	resizes chan shared.Size

	killErr  error
	closeErr error

	mu     sync.Mutex
	exit   *shared.ExitStatus
	exitC  chan struct{}
	kills  int
	closes int
}

func newFakePTY(req shared.SpawnRequest) *fakePTY {
	r, w := io.Pipe()
	return &fakePTY{
		req: req, outR: r, outW: w,
		input:   make(chan []byte, 64),
		resizes: make(chan shared.Size, 16),
		exitC:   make(chan struct{}),
	}
}

func (p *fakePTY) Read(b []byte) (int, error) { return p.outR.Read(b) }

func (p *fakePTY) Write(b []byte) (int, error) {
	p.input <- slices.Clone(b)
	return len(b), nil
}

func (p *fakePTY) Resize(_ context.Context, s shared.Size) error {
	p.resizes <- s
	return nil
}

func (p *fakePTY) Wait(ctx context.Context) (shared.ExitStatus, error) {
	select {
	case <-p.exitC:
	case <-ctx.Done():
		return shared.ExitStatus{}, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return *p.exit, nil
}

// output writes b as the child's output; it blocks until the pump reads it.
func (p *fakePTY) output(t *testing.T, b []byte) {
	t.Helper()
	if _, err := p.outW.Write(b); err != nil {
		t.Fatalf("fake output: %v", err)
	}
}

// end makes the child exit with st, after all output written so far.
func (p *fakePTY) end(st shared.ExitStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exit != nil {
		return
	}
	p.exit = &st
	close(p.exitC)
	p.outW.Close()
}

func (p *fakePTY) Kill(context.Context) error {
	p.mu.Lock()
	p.kills++
	p.mu.Unlock()
	p.end(shared.ExitStatus{Code: 129, Signal: "SIGHUP"})
	return p.killErr
}

func (p *fakePTY) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closes++
	return p.closeErr
}

// fakePlugins serves the FAKE type with one fakeEnv.
type fakePlugins map[string]shared.Environment

func (f fakePlugins) Environment(t string) (shared.Environment, error) {
	if e, ok := f[t]; ok {
		return e, nil
	}
	return nil, fmt.Errorf("%w: %q", core.ErrNoPlugin, t)
}

// memStore is an in-memory Store whose writes can be made to fail.
type memStore struct {
	mu       sync.Mutex
	envs     map[string]core.Environment
	envOrder []string
	sessions map[string]core.SessionRecord
	order    []string
	failNext int // fail this many session writes
	writes   int
}

func newMemStore() *memStore {
	return &memStore{envs: map[string]core.Environment{}, sessions: map[string]core.SessionRecord{}}
}

var errStoreDown = errors.New("store is down")

func (s *memStore) CreateEnvironment(_ context.Context, env core.Environment) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.envs[env.ID]; ok {
		return core.ErrAlreadyExists
	}
	s.envs[env.ID] = env
	s.envOrder = append(s.envOrder, env.ID)
	return nil
}

func (s *memStore) GetEnvironment(_ context.Context, id string) (core.Environment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	env, ok := s.envs[id]
	if !ok {
		return core.Environment{}, core.ErrEnvironmentNotFound
	}
	return env, nil
}

func (s *memStore) ListEnvironments(context.Context) ([]core.Environment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []core.Environment
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
		return core.ErrEnvironmentNotFound
	}
	delete(s.envs, id)
	return nil
}

func (s *memStore) fail() error {
	s.writes++
	if s.failNext > 0 {
		s.failNext--
		return errStoreDown
	}
	return nil
}

func (s *memStore) SaveSession(_ context.Context, rec core.SessionRecord) error {
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

func (s *memStore) UpdateSession(_ context.Context, id string, u core.SessionUpdate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail(); err != nil {
		return err
	}
	rec, ok := s.sessions[id]
	if !ok {
		return core.ErrSessionNotFound
	}
	u.ApplyTo(&rec)
	s.sessions[id] = rec
	return nil
}

func (s *memStore) GetSession(_ context.Context, id string) (core.SessionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.sessions[id]
	if !ok {
		return core.SessionRecord{}, core.ErrSessionNotFound
	}
	return rec, nil
}

func (s *memStore) ListSessions(_ context.Context, statuses ...core.Status) ([]core.SessionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []core.SessionRecord
	for _, id := range s.order {
		rec := s.sessions[id]
		if len(statuses) == 0 || slices.Contains(statuses, rec.Status) {
			out = append(out, rec)
		}
	}
	return out, nil
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
	m     *core.Manager
	env   *fakeEnv
	store *memStore
}

func newHarness(t *testing.T, mod func(*core.Options)) *harness {
	t.Helper()
	h := &harness{env: &fakeEnv{}, store: newMemStore()}
	h.store.envs["fake"] = core.Environment{ID: "fake", Name: "fake", Type: "FAKE"}
	h.store.envOrder = []string{"fake"}
	opts := core.Options{Store: h.store, Plugins: fakePlugins{"FAKE": h.env}, IdleTimeout: core.NoIdleTimeout}
	if mod != nil {
		mod(&opts)
	}
	m, err := core.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.m = m
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

func (h *harness) create(t *testing.T, id string) (core.SessionRecord, *fakePTY) {
	t.Helper()
	rec, err := h.m.CreateSession(context.Background(), core.CreateOptions{ID: id, EnvironmentID: "fake"})
	if err != nil {
		t.Fatalf("CreateSession(%q): %v", id, err)
	}
	return rec, h.env.last(t)
}

func (h *harness) attach(t *testing.T, id string) *core.Attachment {
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
func collect(t *testing.T, a *core.Attachment, want int) []byte {
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
		case core.FrameOutput:
			got = append(got, f.Data...)
		case core.FrameResize:
		default:
			t.Fatalf("after %d bytes: unexpected frame %+v", len(got), f)
		}
	}
	return got
}

// tryAttach attaches to id and detaches again, returning Attach's error.
func tryAttach(m *core.Manager, id string) error {
	a, err := m.Attach(context.Background(), id)
	if err == nil {
		a.Close()
	}
	return err
}
