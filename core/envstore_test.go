package core

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ptyhost/ptyhost/shared"
)

// stallStore is a memStore whose chosen methods hang until their context
// ends (stall), wait for gate to close and then answer (gate), or fail at
// once (fail), as a database that drops packets, holds a lock or is down.
// It implements EnvironmentUpdater too.
type stallStore struct {
	*memStore
	mu      sync.Mutex
	stall   map[string]bool
	gated   map[string]bool
	fails   map[string]bool
	gate    chan struct{}
	entered chan string // a stalled or gated call has begun
}

func newStallStore(ms *memStore) *stallStore {
	return &stallStore{memStore: ms, stall: map[string]bool{}, gated: map[string]bool{}, fails: map[string]bool{},
		gate: make(chan struct{}), entered: make(chan string, 16)}
}

// set makes method stall, wait for the gate or fail ("", to answer).
func (s *stallStore) set(method, how string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stall[method], s.gated[method], s.fails[method] = how == "stall", how == "gate", how == "fail"
}

// call is what method does before the memStore answers.
func (s *stallStore) call(ctx context.Context, method string) error {
	s.mu.Lock()
	stall, gated, fail := s.stall[method], s.gated[method], s.fails[method]
	s.mu.Unlock()
	switch {
	case fail:
		return errDatabaseDown
	case stall:
		s.entered <- method
		<-ctx.Done()
		return ctx.Err()
	case gated:
		s.entered <- method
		select {
		case <-s.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *stallStore) CreateEnvironment(ctx context.Context, env Environment) error {
	if err := s.call(ctx, "CreateEnvironment"); err != nil {
		return err
	}
	return s.memStore.CreateEnvironment(ctx, env)
}

func (s *stallStore) GetEnvironment(ctx context.Context, id string) (Environment, error) {
	if err := s.call(ctx, "GetEnvironment"); err != nil {
		return Environment{}, err
	}
	return s.memStore.GetEnvironment(ctx, id)
}

func (s *stallStore) ListEnvironments(ctx context.Context) ([]Environment, error) {
	if err := s.call(ctx, "ListEnvironments"); err != nil {
		return nil, err
	}
	return s.memStore.ListEnvironments(ctx)
}

func (s *stallStore) DeleteEnvironment(ctx context.Context, id string) error {
	if err := s.call(ctx, "DeleteEnvironment"); err != nil {
		return err
	}
	return s.memStore.DeleteEnvironment(ctx, id)
}

func (s *stallStore) UpdateEnvironment(ctx context.Context, env Environment) error {
	if err := s.call(ctx, "UpdateEnvironment"); err != nil {
		return err
	}
	s.memStore.mu.Lock()
	defer s.memStore.mu.Unlock()
	if _, ok := s.memStore.envs[env.ID]; !ok {
		return ErrEnvironmentNotFound
	}
	s.memStore.envs[env.ID] = env
	return nil
}

func (s *stallStore) GetSession(ctx context.Context, id string) (SessionRecord, error) {
	if err := s.call(ctx, "GetSession"); err != nil {
		return SessionRecord{}, err
	}
	return s.memStore.GetSession(ctx, id)
}

// withStoreTimeout sets storeTimeout to d for the test. Call it before
// newHarness, so that the manager has stopped when it is put back.
func withStoreTimeout(t *testing.T, d time.Duration) {
	old := storeTimeout
	storeTimeout = d
	t.Cleanup(func() { storeTimeout = old })
}

// answersWithin runs f and fails the test unless it returns within d; it does not
// wait for an f that does not.
func answersWithin(t *testing.T, what string, d time.Duration, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	case <-time.After(d):
		t.Errorf("%s: no answer within %v", what, d)
		<-done // no goroutine left behind; the test has failed anyway
		t.Logf("%s answered after %v", what, time.Since(start))
	}
}

// While the database hangs on an environment's delete, the manager's other
// requests (a session's get, an attach, a create, the list, the metrics)
// do not wait for it, and the delete gives up within storeTimeout as the
// database being unavailable.
func TestDeleteEnvironmentStallHoldsNoRequest(t *testing.T) {
	withStoreTimeout(t, time.Second)
	reg := prometheus.NewRegistry()
	var st *stallStore
	h := newHarness(t, func(o *Options) {
		st = newStallStore(o.Store.(*memStore))
		o.Store = st
		o.Registerer = reg
	})
	h.store.envs["gone"] = Environment{ID: "gone", Name: "gone", Type: "FAKE"}
	h.create(t, "live")
	st.set("DeleteEnvironment", "stall")

	start := time.Now()
	deleted := make(chan error, 1)
	go func() {
		// A bound of the test's own, so that code without one ends too.
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
		defer cancel()
		deleted <- h.m.DeleteEnvironment(ctx, "gone")
	}()
	<-st.entered

	const quick = 300 * time.Millisecond
	answersWithin(t, "GetSession", quick, func() error {
		_, err := h.m.GetSession(t.Context(), "live")
		return err
	})
	answersWithin(t, "Attach", quick, func() error { return tryAttach(h.m, "live") })
	answersWithin(t, "CreateSession", quick, func() error {
		_, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "new", EnvironmentID: "fake"})
		return err
	})
	answersWithin(t, "ListSessions", quick, func() error {
		_, err := h.m.ListSessions(t.Context())
		return err
	})
	answersWithin(t, "the metrics' collection", quick, func() error {
		_, err := reg.Gather()
		return err
	})

	err := <-deleted
	if !errors.Is(err, ErrStoreUnavailable) {
		t.Errorf("DeleteEnvironment with a hung store: %v, want ErrStoreUnavailable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("DeleteEnvironment took %v; want about storeTimeout (%v)", d, storeTimeout)
	}
	// The environment is not left marked as being deleted.
	st.set("DeleteEnvironment", "")
	if err := h.m.DeleteEnvironment(t.Context(), "gone"); err != nil {
		t.Errorf("DeleteEnvironment once the store answers: %v", err)
	}
}

// A create in an environment whose delete is in the store waits for the
// delete's outcome: no session starts in an environment deleted under it.
// And while a session of the environment is starting, it cannot be
// deleted (TestCreateRacingDeleteEnvironment has the create that looked it
// up before the delete).
func TestCreateWaitsForEnvironmentDelete(t *testing.T) {
	var st *stallStore
	h := newHarness(t, func(o *Options) {
		st = newStallStore(o.Store.(*memStore))
		o.Store = st
	})
	st.set("DeleteEnvironment", "gate")
	deleted := make(chan error, 1)
	go func() { deleted <- h.m.DeleteEnvironment(context.Background(), "fake") }()
	<-st.entered

	created := make(chan error, 1)
	go func() {
		_, err := h.m.CreateSession(context.Background(), CreateOptions{ID: "x", EnvironmentID: "fake"})
		created <- err
	}()
	select {
	case err := <-created:
		t.Fatalf("a create during the environment's delete answered before it: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(st.gate)
	if err := <-deleted; err != nil {
		t.Fatalf("DeleteEnvironment: %v", err)
	}
	if err := <-created; !errors.Is(err, ErrEnvironmentNotFound) {
		t.Errorf("create in an environment deleted meanwhile: %v, want ErrEnvironmentNotFound", err)
	}
	if h.m.isLive("x") || h.env.Count() != 0 {
		t.Errorf("the create left a session (live %v, %d spawned)", h.m.isLive("x"), h.env.Count())
	}
}

// Every environment method is bounded by storeTimeout, and a store that
// fails or hangs is ErrStoreUnavailable, which the API answers 503.
func TestEnvironmentStoreFailures(t *testing.T) {
	withStoreTimeout(t, 200*time.Millisecond)
	var st *stallStore
	h := newHarness(t, func(o *Options) {
		st = newStallStore(o.Store.(*memStore))
		o.Store = st
	})
	name := "renamed"
	calls := []struct {
		method string // the store's
		call   func(context.Context) error
	}{
		{"CreateEnvironment", func(ctx context.Context) error {
			_, err := h.m.CreateEnvironment(ctx, Environment{ID: "new", Type: "FAKE"})
			return err
		}},
		{"GetEnvironment", func(ctx context.Context) error {
			_, err := h.m.GetEnvironment(ctx, "fake")
			return err
		}},
		{"ListEnvironments", func(ctx context.Context) error {
			_, err := h.m.ListEnvironments(ctx)
			return err
		}},
		{"UpdateEnvironment", func(ctx context.Context) error {
			_, err := h.m.UpdateEnvironment(ctx, "fake", EnvironmentUpdate{Name: &name})
			return err
		}},
		{"GetEnvironment", func(ctx context.Context) error { // EnsureEnvironment's lookup
			_, err := h.m.EnsureEnvironment(ctx, Environment{ID: "fake", Type: "FAKE"})
			return err
		}},
		{"CreateEnvironment", func(ctx context.Context) error { // EnsureEnvironment's create
			_, err := h.m.EnsureEnvironment(ctx, Environment{ID: "ensured", Type: "FAKE"})
			return err
		}},
		{"DeleteEnvironment", func(ctx context.Context) error {
			return h.m.DeleteEnvironment(ctx, "fake")
		}},
	}
	for _, how := range []string{"fail", "stall"} {
		for _, c := range calls {
			st.set(c.method, how)
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			start := time.Now()
			err := c.call(ctx)
			cancel()
			if !errors.Is(err, ErrStoreUnavailable) {
				t.Errorf("%s that does %s: %v, want ErrStoreUnavailable", c.method, how, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("%s that does %s: answered after %v", c.method, how, d)
			}
			st.set(c.method, "")
			if how == "stall" {
				<-st.entered
			}
		}
	}
}

// An ended session's record the store cannot give is ErrStoreUnavailable,
// not a session that has not ended (which the attach answered 404).
func TestEndedSessionStoreDown(t *testing.T) {
	var st *stallStore
	h := newHarness(t, func(o *Options) {
		st = newStallStore(o.Store.(*memStore))
		o.Store = st
		o.Linger = time.Millisecond
	})
	_, p := h.create(t, "s")
	p.End(shared.ExitStatus{Code: 3})
	eventually(t, "the ended session to be written and let go", func() bool {
		h.m.mu.Lock()
		inMap := h.m.sessions["s"] != nil
		h.m.mu.Unlock()
		h.m.writer.mu.Lock()
		pending := h.m.writer.pending["s"] != nil || h.m.writer.inflight["s"] != nil
		h.m.writer.mu.Unlock()
		return !inMap && !pending && h.store.row(t, "s").Status == StatusTerminated
	})
	st.set("GetSession", "fail")
	if _, ok, err := h.m.EndedSession(t.Context(), "s"); ok || !errors.Is(err, ErrStoreUnavailable) {
		t.Errorf("EndedSession with the store down: %v, %v; want ErrStoreUnavailable", ok, err)
	}
	if _, err := h.m.RestartSession(t.Context(), "s", RestartOptions{}); !errors.Is(err, ErrStoreUnavailable) {
		t.Errorf("RestartSession of an ended session with the store down: %v; want ErrStoreUnavailable", err)
	}
	st.set("GetSession", "")
	if rec, ok, err := h.m.EndedSession(t.Context(), "s"); !ok || err != nil || rec.Status != StatusTerminated {
		t.Errorf("EndedSession with the store back: %+v, %v, %v", rec, ok, err)
	}
}
