package api

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/internal/e2etest"
	"github.com/ptyhost/ptyhost/internal/fakeenv"
)

// The API's test harness: a Manager over the scriptable environment of
// internal/fakeenv (the one core's own tests use) and the real store, on a
// SQLite file of the test's own.

// harness is a Manager over a fake environment of type FAKE, recorded as
// environment "fake", and a SQLite store.
type harness struct {
	m     *core.Manager
	env   *fakeenv.Env
	store *gormstore.DB
}

func newHarness(t *testing.T, mod func(*core.Options)) *harness {
	t.Helper()
	ctx := context.Background()
	store, err := gormstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "ptyhost.db"), gormstore.Options{})
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	t.Cleanup(func() { // after the Manager's Close, registered below
		if err := store.Close(); err != nil {
			t.Errorf("close the store: %v", err)
		}
	})
	if err := store.CreateEnvironment(ctx, core.Environment{ID: "fake", Name: "fake", Type: "FAKE"}); err != nil {
		t.Fatal(err)
	}
	h := &harness{env: &fakeenv.Env{}, store: store}
	opts := core.Options{Store: store, Plugins: core.StaticEnvironments{"FAKE": h.env}, IdleTimeout: core.NoIdleTimeout}
	if mod != nil {
		mod(&opts)
	}
	h.m, err = core.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.m.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// create starts session id in environment "fake" and returns its row and
// its terminal.
func (h *harness) create(t *testing.T, id string) (core.SessionRecord, *fakeenv.PTY) {
	t.Helper()
	rec, err := h.m.CreateSession(context.Background(), core.CreateOptions{ID: id, EnvironmentID: "fake"})
	if err != nil {
		t.Fatalf("CreateSession(%q): %v", id, err)
	}
	return rec, h.env.Last(t)
}

// eventually polls cond until it holds or 5 s have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	e2etest.Eventually(t, 5*time.Second, what, cond, nil)
}

// outageStore is a Store whose database can be taken down and brought back:
// while down, the calls a create, a list, a health check and the
// environments' endpoints make fail.
type outageStore struct {
	core.Store
	down  atomic.Bool
	pings atomic.Int64
}

var errDatabaseDown = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

// unlessDown returns errDatabaseDown while o is down, else call's result.
func unlessDown[T any](o *outageStore, call func() (T, error)) (T, error) {
	if o.down.Load() {
		var zero T
		return zero, errDatabaseDown
	}
	return call()
}

// errUnlessDown is unlessDown for calls that return only an error.
func errUnlessDown(o *outageStore, call func() error) error {
	_, err := unlessDown(o, func() (struct{}, error) { return struct{}{}, call() })
	return err
}

func (o *outageStore) Ping(context.Context) error {
	o.pings.Add(1)
	return errUnlessDown(o, func() error { return nil })
}

func (o *outageStore) GetEnvironment(ctx context.Context, id string) (core.Environment, error) {
	return unlessDown(o, func() (core.Environment, error) { return o.Store.GetEnvironment(ctx, id) })
}

func (o *outageStore) CreateEnvironment(ctx context.Context, env core.Environment) error {
	return errUnlessDown(o, func() error { return o.Store.CreateEnvironment(ctx, env) })
}

func (o *outageStore) ListEnvironments(ctx context.Context) ([]core.Environment, error) {
	return unlessDown(o, func() ([]core.Environment, error) { return o.Store.ListEnvironments(ctx) })
}

func (o *outageStore) DeleteEnvironment(ctx context.Context, id string) error {
	return errUnlessDown(o, func() error { return o.Store.DeleteEnvironment(ctx, id) })
}

// UpdateEnvironment makes outageStore a core.EnvironmentUpdater, as the
// store it wraps is.
func (o *outageStore) UpdateEnvironment(ctx context.Context, env core.Environment) error {
	return errUnlessDown(o, func() error { return o.Store.(core.EnvironmentUpdater).UpdateEnvironment(ctx, env) })
}

func (o *outageStore) SaveSession(ctx context.Context, rec core.SessionRecord) error {
	return errUnlessDown(o, func() error { return o.Store.SaveSession(ctx, rec) })
}

func (o *outageStore) UpdateSession(ctx context.Context, id string, u core.SessionUpdate) error {
	return errUnlessDown(o, func() error { return o.Store.UpdateSession(ctx, id, u) })
}

func (o *outageStore) GetSession(ctx context.Context, id string) (core.SessionRecord, error) {
	return unlessDown(o, func() (core.SessionRecord, error) { return o.Store.GetSession(ctx, id) })
}

func (o *outageStore) QuerySessions(ctx context.Context, q core.SessionQuery) ([]core.SessionRecord, error) {
	return unlessDown(o, func() ([]core.SessionRecord, error) { return o.Store.QuerySessions(ctx, q) })
}
