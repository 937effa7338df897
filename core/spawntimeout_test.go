package core

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// createAsync runs CreateSession of id in environment "fake" under ctx and
// returns where its error comes.
func createAsync(ctx context.Context, m *Manager, id string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := m.CreateSession(ctx, CreateOptions{ID: id, EnvironmentID: "fake"})
		done <- err
	}()
	return done
}

// within returns the error from done, failing the test if none comes
// within d.
func within(t *testing.T, what string, done <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
		return nil
	}
}

// A plugin that never answers a spawn fails the create at the spawn
// timeout, whatever the caller's context allows: ERROR with the reason,
// nothing left behind, the id free again.
func TestSpawnTimeoutFailsTheCreate(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.SpawnTimeout = 100 * time.Millisecond })
	events := h.m.Subscribe(t.Context())
	h.env.SetSpawn(func(ctx context.Context, _ shared.SpawnRequest) (shared.PTY, error) {
		<-ctx.Done() // as the gRPC client does for a plugin that never answers
		return nil, context.Cause(ctx)
	})
	// No deadline of the caller's: a client without a timeout.
	err := within(t, "a create whose spawn never answers", createAsync(t.Context(), h.m, "hung"), 5*time.Second)
	if !errors.Is(err, ErrSpawn) || !errors.Is(err, ErrPluginTimeout) {
		t.Fatalf("err = %v, want ErrSpawn wrapping ErrPluginTimeout", err)
	}
	if !strings.Contains(err.Error(), "100ms") {
		t.Errorf("err = %q, want it to say the timeout", err)
	}
	if e := <-events; e.Type != SessionError || !errors.Is(e.Err, ErrPluginTimeout) {
		t.Errorf("event = %+v, want session_error", e)
	}
	rec, err := h.m.GetSession(t.Context(), "hung")
	if err != nil || rec.Status != StatusError || !strings.Contains(rec.StatusReason, "not started within 100ms") {
		t.Errorf("GetSession = %+v, %v; want ERROR saying the spawn timed out", rec, err)
	}
	eventually(t, "the row to be ERROR", func() bool {
		rec, err := h.store.GetSession(t.Context(), "hung")
		return err == nil && rec.Status == StatusError
	})
	if _, err := h.m.Attach(t.Context(), "hung"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("timed-out session attachable: %v", err)
	}
	h.env.SetSpawn(nil)
	h.create(t, "hung")
}

// A spawn that answers with a PTY after its deadline, not watching its
// context, still fails the create, and the late PTY is killed and closed.
func TestLateSpawnPastTheTimeoutIsKilled(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.SpawnTimeout = 100 * time.Millisecond })
	h.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond)
		p := fakeenv.NewPTY(req)
		h.env.Add(p)
		return p, nil
	})
	err := within(t, "a create whose spawn answers late", createAsync(t.Context(), h.m, "late"), 5*time.Second)
	if !errors.Is(err, ErrPluginTimeout) {
		t.Fatalf("err = %v, want ErrPluginTimeout", err)
	}
	if kills, closes := h.env.Last(t).Counts(); kills == 0 || closes != 1 {
		t.Errorf("late PTY: %d kills, %d closes; want it killed and closed", kills, closes)
	}
	if h.m.isLive("late") {
		t.Error("the session is still in the map")
	}
}

// DestroySession of a session whose spawn has not answered cancels the
// spawn: the create fails at once, and the session is recorded TERMINATED
// by the time DestroySession returns, not left STARTING.
func TestDestroyCancelsAStartingSpawn(t *testing.T) {
	h := newHarness(t, nil) // the default spawn timeout: a minute
	spawning := make(chan struct{})
	h.env.SetSpawn(func(ctx context.Context, _ shared.SpawnRequest) (shared.PTY, error) {
		close(spawning)
		<-ctx.Done()
		return nil, context.Cause(ctx)
	})
	created := createAsync(t.Context(), h.m, "starting")
	<-spawning
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := h.m.DestroySession(ctx, "starting"); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("DestroySession waited until its deadline")
	}
	rec, err := h.m.GetSession(t.Context(), "starting")
	if err != nil || rec.Status != StatusTerminated {
		t.Errorf("after DestroySession: %+v, %v; want TERMINATED", rec, err)
	}
	err = within(t, "the create of a session destroyed while starting", created, 2*time.Second)
	if !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("create = %v, want ErrSessionNotFound (destroyed while starting)", err)
	}
	eventually(t, "the row to be TERMINATED", func() bool {
		rec, err := h.store.GetSession(t.Context(), "starting")
		return err == nil && rec.Status == StatusTerminated
	})
	// The id is free again.
	h.env.SetSpawn(nil)
	h.create(t, "starting")
}

// hangingValidator is the fake environment with a ValidateConfig that
// never answers.
type hangingValidator struct{ *fakeenv.Env }

func (hangingValidator) ValidateConfig(ctx context.Context, _ string, _ json.RawMessage) error {
	<-ctx.Done()
	return ctx.Err()
}

// A plugin that never answers a config's validation fails the
// environment's create after validateConfigTimeout.
func TestValidateConfigTimeout(t *testing.T) {
	old := validateConfigTimeout
	validateConfigTimeout = 100 * time.Millisecond
	t.Cleanup(func() { validateConfigTimeout = old })
	h := newHarness(t, func(o *Options) {
		o.Plugins = fakePlugins{"FAKE": hangingValidator{&fakeenv.Env{}}}
	})
	done := make(chan error, 1)
	go func() {
		_, err := h.m.CreateEnvironment(t.Context(), Environment{ID: "slow", Type: "FAKE", Config: json.RawMessage(`{"mode":"hangvalidate"}`)})
		done <- err
	}()
	err := within(t, "an environment create whose validation never answers", done, 5*time.Second)
	if !errors.Is(err, ErrPluginTimeout) {
		t.Fatalf("err = %v, want ErrPluginTimeout", err)
	}
	if _, err := h.store.GetEnvironment(t.Context(), "slow"); !errors.Is(err, ErrEnvironmentNotFound) {
		t.Errorf("the environment was stored: %v", err)
	}
}

func TestSpawnTimeoutOption(t *testing.T) {
	if err := (Options{Store: newMemStore(), Plugins: fakePlugins{}, SpawnTimeout: -1}).Validate(); err == nil {
		t.Error("a negative SpawnTimeout was accepted")
	}
	if got := (Options{}).withDefaults().SpawnTimeout; got != DefaultSpawnTimeout {
		t.Errorf("default SpawnTimeout = %v, want %v", got, DefaultSpawnTimeout)
	}
}

// A caller that gives up while the plugin starts the session (a client
// that hung up on its create) does not cancel the start: the session
// starts and runs, rather than being recorded ERROR "context canceled".
func TestCallerGoneDoesNotCancelTheStart(t *testing.T) {
	h := newHarness(t, nil)
	spawning, release := make(chan struct{}), make(chan struct{})
	h.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		close(spawning)
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-release:
		}
		p := fakeenv.NewPTY(req)
		h.env.Add(p)
		return p, nil
	})
	ctx, cancel := context.WithCancel(t.Context())
	created := createAsync(ctx, h.m, "s1")
	<-spawning
	cancel()
	time.Sleep(50 * time.Millisecond) // what a cancelled start would need to end
	close(release)
	if err := within(t, "the create", created, 5*time.Second); err != nil {
		t.Fatalf("create after its caller left: %v, want the session started", err)
	}
	rec, err := h.m.GetSession(t.Context(), "s1")
	if err != nil || rec.Status != StatusActive {
		t.Errorf("record %+v, %v; want ACTIVE", rec, err)
	}
}
