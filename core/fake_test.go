package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
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
		if err := m.Close(ctx); err != nil {
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
