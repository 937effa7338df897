package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ptyhost/ptyhost/shared"
)

// These tests drive the Manager's exported API directly, as core/api and
// embedders do.

func TestEnvironmentLifecycle(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	h.env.SetValidate(func(cfg json.RawMessage) error {
		if string(cfg) == `{"bad":true}` {
			return fmt.Errorf("%w: bad is not allowed", shared.ErrInvalidConfig)
		}
		return nil
	})

	env, err := h.m.CreateEnvironment(ctx, Environment{ID: "e1", Type: "FAKE", Config: json.RawMessage(`{"a":1}`)})
	if err != nil || env.Name != "e1" || env.CreatedAt.IsZero() {
		t.Fatalf("create: %+v, %v; want the name defaulted to the id and a creation time", env, err)
	}
	gen, err := h.m.CreateEnvironment(ctx, Environment{Type: "FAKE"})
	if err != nil || gen.ID == "" || validID(gen.ID) != nil {
		t.Fatalf("create without id: %+v, %v", gen, err)
	}
	for name, bad := range map[string]Environment{
		"taken id":       {ID: "e1", Type: "FAKE"},
		"unknown type":   {ID: "e2", Type: "NOPE"},
		"no type":        {ID: "e3"},
		"bad id":         {ID: "..", Type: "FAKE"},
		"not an object":  {ID: "e4", Type: "FAKE", Config: json.RawMessage(`[1]`)},
		"plugin says no": {ID: "e5", Type: "FAKE", Config: json.RawMessage(`{"bad":true}`)},
	} {
		if _, err := h.m.CreateEnvironment(ctx, bad); err == nil {
			t.Errorf("%s: created %+v", name, bad)
		} else if name == "taken id" && !errors.Is(err, ErrAlreadyExists) {
			t.Errorf("%s: %v, want ErrAlreadyExists", name, err)
		} else if name != "taken id" && !errors.Is(err, ErrInvalidArgument) && !errors.Is(err, shared.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidArgument or the plugin's ErrInvalidConfig", name, err)
		}
	}

	// Ensure returns an existing environment as it is and creates a new one.
	got, err := h.m.EnsureEnvironment(ctx, Environment{ID: "e1", Type: "FAKE", Name: "other"})
	if err != nil || got.Name != "e1" {
		t.Errorf("ensure existing: %+v, %v; want it unchanged", got, err)
	}
	if got, err := h.m.EnsureEnvironment(ctx, Environment{ID: "e6", Type: "FAKE"}); err != nil || got.ID != "e6" {
		t.Errorf("ensure new: %+v, %v", got, err)
	}

	envs, err := h.m.ListEnvironments(ctx)
	if err != nil || len(envs) != 4 { // fake, e1, the generated one, e6
		t.Errorf("list: %d environments, %v; want 4", len(envs), err)
	}
	if _, err := h.m.GetEnvironment(ctx, "missing"); !errors.Is(err, ErrEnvironmentNotFound) {
		t.Errorf("get missing: %v", err)
	}

	// A running session keeps its environment.
	if _, err := h.m.CreateSession(ctx, CreateOptions{ID: "s1", EnvironmentID: "e1"}); err != nil {
		t.Fatal(err)
	}
	if err := h.m.DeleteEnvironment(ctx, "e1"); !errors.Is(err, ErrEnvironmentInUse) {
		t.Errorf("delete in use: %v, want ErrEnvironmentInUse", err)
	}
	if err := h.m.DestroySession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if err := h.m.DeleteEnvironment(ctx, "e1"); err != nil {
		t.Errorf("delete: %v", err)
	}
	if err := h.m.DeleteEnvironment(ctx, "e1"); !errors.Is(err, ErrEnvironmentNotFound) {
		t.Errorf("delete again: %v, want ErrEnvironmentNotFound", err)
	}
	// The in-memory store cannot update environments: the Manager says so,
	// with ErrNotSupported (the API's 501).
	name := "x"
	if _, err := h.m.UpdateEnvironment(ctx, "e6", EnvironmentUpdate{Name: &name}); !errors.Is(err, ErrNotSupported) ||
		err.Error() != "updating an environment is not supported by this store (it does not implement core.EnvironmentUpdater)" {
		t.Errorf("update through a store without EnvironmentUpdater: %v; want ErrNotSupported", err)
	}
}

func TestQuerySessionsPages(t *testing.T) {
	h := newHarness(t, nil)
	ctx := t.Context()
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		h.create(t, id)
	}
	_, p := h.create(t, "f")
	p.End(shared.ExitStatus{Code: 3})
	eventually(t, "f to end", func() bool {
		rec, err := h.m.GetSession(ctx, "f")
		return err == nil && rec.Status == StatusTerminated
	})

	var ids []string
	o := ListOptions{Limit: 2}
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		page, err := h.m.QuerySessions(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range page.Sessions {
			ids = append(ids, rec.ID)
		}
		if page.NextCursor == "" {
			break
		}
		o.Cursor = page.NextCursor
	}
	if got := joinIDs(ids); got != "a b c d e f" {
		t.Errorf("pages hold %q, want every session once in creation order", got)
	}

	page, err := h.m.QuerySessions(ctx, ListOptions{Statuses: []Status{StatusTerminated}})
	if err != nil || joinIDs(idsOf(page.Sessions)) != "f" {
		t.Errorf("status filter: %v, %v; want f", idsOf(page.Sessions), err)
	}
	page, err = h.m.QuerySessions(ctx, ListOptions{Statuses: []Status{StatusError}})
	if err != nil || len(page.Sessions) != 0 {
		t.Errorf("status filter ERROR: %v, %v; want none", idsOf(page.Sessions), err)
	}
	page, err = h.m.QuerySessions(ctx, ListOptions{EnvironmentID: "nope"})
	if err != nil || len(page.Sessions) != 0 {
		t.Errorf("environment filter: %v, %v; want none", idsOf(page.Sessions), err)
	}
	for name, o := range map[string]ListOptions{
		"unknown status": {Statuses: []Status{"DONE"}},
		"limit too big":  {Limit: MaxListLimit + 1},
		"bad cursor":     {Cursor: "not-a-cursor"},
		"forged cursor":  {Cursor: encodeCursor(SessionKey{ID: "..", CreatedAt: time.Now()})},
	} {
		if _, err := h.m.QuerySessions(ctx, o); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
}

func idsOf(recs []SessionRecord) []string {
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	return ids
}

func joinIDs(ids []string) string {
	s := ""
	for i, id := range ids {
		if i > 0 {
			s += " "
		}
		s += id
	}
	return s
}

func TestStoreHealth(t *testing.T) {
	// A store without Ping is asked for an environment.
	h := newHarness(t, nil)
	if err := h.m.StoreHealth(t.Context()); err != nil {
		t.Errorf("memory store: %v", err)
	}

	st := &outageStore{Store: newMemStore()}
	o := newHarness(t, func(opts *Options) { opts.Store = st })
	if err := o.m.StoreHealth(t.Context()); err != nil || st.pings.Load() != 1 {
		t.Fatalf("up: %v after %d pings", err, st.pings.Load())
	}
	// The answer is reused for a second.
	st.down.Store(true)
	if err := o.m.StoreHealth(t.Context()); err != nil || st.pings.Load() != 1 {
		t.Errorf("cached: %v after %d pings; want the cached answer", err, st.pings.Load())
	}
	eventually(t, "the store to be reported down", func() bool {
		return errors.Is(o.m.StoreHealth(t.Context()), ErrStoreUnavailable)
	})
}

func TestAPIHooks(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, func(o *Options) { o.Registerer = reg; o.Linger = time.Millisecond })
	ctx := t.Context()
	_, p := h.create(t, "live")

	if err := h.m.Attachable("live"); err != nil {
		t.Errorf("Attachable(live): %v", err)
	}
	if err := h.m.Attachable("missing"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("Attachable(missing): %v", err)
	}
	if _, ok, err := h.m.EndedSession(ctx, "live"); ok || err != nil {
		t.Errorf("EndedSession(live): %v, %v; want not ended", ok, err)
	}
	if _, ok, err := h.m.EndedSession(ctx, "missing"); ok || err != nil {
		t.Errorf("EndedSession(missing): %v, %v; want not ended", ok, err)
	}

	a := h.attach(t, "live")
	a.Reject("no")
	f, _ := nextFrame(t, a)
	if f.Kind != FrameError || f.Message != "no" {
		t.Errorf("after Reject: %+v, want an error frame", f)
	}
	a.ClientDropped()
	if n := gatheredValue(t, reg, "ptyhost_client_drops_total"); n != 1 {
		t.Errorf("registered client drops = %v, want 1", n)
	}

	p.End(shared.ExitStatus{Code: 7})
	a.Close()
	eventually(t, "the ended session to stop being attachable", func() bool {
		return errors.Is(h.m.Attachable("live"), ErrSessionNotFound)
	})
	rec, ok, err := h.m.EndedSession(ctx, "live")
	if !ok || err != nil || rec.Status != StatusTerminated || rec.ExitCode == nil || *rec.ExitCode != 7 {
		t.Errorf("EndedSession: %+v, %v, %v; want TERMINATED with code 7", rec, ok, err)
	}

	if err := ValidSize(80, 24); err != nil {
		t.Errorf("ValidSize(80, 24): %v", err)
	}
	for _, s := range [][2]int{{0, 24}, {80, 0}, {MaxTermSize + 1, 24}, {80, -1}} {
		if err := ValidSize(s[0], s[1]); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ValidSize(%d, %d): %v", s[0], s[1], err)
		}
	}
}

func gatheredValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			if c := mf.GetMetric()[0].GetCounter(); c != nil {
				return c.GetValue()
			}
		}
	}
	t.Fatalf("metric %s not gathered", name)
	return 0
}

// gatedEnvStore holds up one environment lookup, after it has its answer,
// until gate closes.
type gatedEnvStore struct {
	*memStore
	once   sync.Once
	looked chan struct{} // closed when the held lookup has its answer
	gate   chan struct{}
}

func (s *gatedEnvStore) GetEnvironment(ctx context.Context, id string) (Environment, error) {
	env, err := s.memStore.GetEnvironment(ctx, id)
	s.once.Do(func() {
		close(s.looked)
		<-s.gate
	})
	return env, err
}

// An environment deleted between a create's lookup of it and the create's
// reservation of its id: DeleteEnvironment saw no session in it, so the
// create must not start one there.
func TestCreateRacingDeleteEnvironment(t *testing.T) {
	var st *gatedEnvStore
	h := newHarness(t, func(o *Options) {
		st = &gatedEnvStore{memStore: o.Store.(*memStore), looked: make(chan struct{}), gate: make(chan struct{})}
		o.Store = st
	})
	created := make(chan error, 1)
	go func() {
		_, err := h.m.CreateSession(context.Background(), CreateOptions{ID: "x", EnvironmentID: "fake"})
		created <- err
	}()
	<-st.looked
	if err := h.m.DeleteEnvironment(t.Context(), "fake"); err != nil {
		t.Fatal(err)
	}
	close(st.gate)
	if err := <-created; !errors.Is(err, ErrEnvironmentNotFound) {
		t.Errorf("create in an environment deleted meanwhile: %v, want ErrEnvironmentNotFound", err)
	}
	if h.m.isLive("x") || h.env.Count() != 0 {
		t.Errorf("the create left a session (live %v, %d spawned)", h.m.isLive("x"), h.env.Count())
	}
}

// A store that answers its check, but takes no session writes (a full
// disk, a locked table), is reported unavailable once the writes have
// kept failing for writesUnhealthyAfter, and healthy again once one lands.
func TestStoreHealthFailingWrites(t *testing.T) {
	old := writesUnhealthyAfter
	writesUnhealthyAfter = 300 * time.Millisecond
	t.Cleanup(func() { writesUnhealthyAfter = old })
	h := newHarness(t, nil)
	h.create(t, "s1")
	h.store.failWrites(1 << 30)
	cols := 100
	h.m.writer.update("s1", SessionUpdate{Cols: &cols})
	eventually(t, "the store reported down while its writes fail", func() bool {
		err := h.m.StoreHealth(t.Context())
		return errors.Is(err, ErrStoreUnavailable) && strings.Contains(err.Error(), "session writes have failed")
	})
	h.store.failWrites(0)
	eventually(t, "the store reported up once a write lands", func() bool {
		return h.m.StoreHealth(t.Context()) == nil
	})
}

// A create whose first save fails (a store that refuses it, an id live
// elsewhere) does not mark the writes failing: it is its caller's error,
// and no write waits to be retried. It held /healthz at 503 for good on
// a server with nothing else to write.
func TestStoreHealthFailedSave(t *testing.T) {
	old := writesUnhealthyAfter
	writesUnhealthyAfter = 100 * time.Millisecond
	t.Cleanup(func() { writesUnhealthyAfter = old })
	h := newHarness(t, nil)
	h.store.failWrites(1)
	if _, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "refused", EnvironmentID: "fake"}); err == nil {
		t.Fatal("a create whose save failed succeeded")
	}
	time.Sleep(3 * writesUnhealthyAfter)
	if err := h.m.StoreHealth(t.Context()); err != nil {
		t.Errorf("the store after one failed create: %v, want healthy", err)
	}
}
