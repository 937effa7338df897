package core

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// deafPTY is a plugin's session whose Kill does nothing; its Close ends
// the output with an error, as the SDK's client does when the plugin
// closes a session whose stream it serves.
type deafPTY struct{ *fakeenv.PTY }

func (p deafPTY) Kill(context.Context) error { return nil }

func (p deafPTY) Close() error {
	p.Crash()
	return p.PTY.Close()
}

// TestDestroyStuckSessionIsTerminated: a session whose plugin's Kill does
// not end it is closed once the kill's wait is over, and recorded as
// destroyed (TERMINATED), not as the failure its close's error would
// otherwise read as (ERROR plugin_crashed).
func TestDestroyStuckSessionIsTerminated(t *testing.T) {
	h := newHarness(t, nil)
	h.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p := fakeenv.NewPTY(req)
		h.env.Add(p)
		return deafPTY{p}, nil
	})
	if _, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "s1", EnvironmentID: "fake"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := h.m.DestroySession(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the record to settle", func() bool {
		r, err := h.store.GetSession(context.Background(), "s1")
		return err == nil && r.Status != StatusActive && r.Status != StatusIdle
	})
	// Whatever the pump's end raced, the record stays TERMINATED.
	time.Sleep(50 * time.Millisecond)
	r, err := h.store.GetSession(context.Background(), "s1")
	if err != nil || r.Status != StatusTerminated || r.StatusReason != "" {
		t.Fatalf("record %+v, %v; want TERMINATED with no reason", r, err)
	}
}

// TestEndedWhileBeingDestroyed: a client that looks a session up while
// its destroy is under way finds it ended (the API's 410, a restart's
// 409), not unknown (404) while GET still shows it running.
func TestEndedWhileBeingDestroyed(t *testing.T) {
	h := newHarness(t, nil)
	h.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p := fakeenv.NewPTY(req)
		h.env.Add(p)
		return &slowKillPTY{PTY: p, delay: 300 * time.Millisecond}, nil
	})
	if _, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "s1", EnvironmentID: "fake"}); err != nil {
		t.Fatal(err)
	}
	destroyed := make(chan error, 1)
	go func() { destroyed <- h.m.DestroySession(t.Context(), "s1") }()
	eventually(t, "the destroy to begin", func() bool { return !h.m.isLive("s1") })
	rec, ok, err := h.m.EndedSession(t.Context(), "s1")
	if !ok || err != nil || rec.Status != StatusTerminated {
		t.Errorf("EndedSession during the destroy: %+v, %v, %v; want TERMINATED", rec, ok, err)
	}
	if _, err := h.m.RestartSession(t.Context(), "s1", RestartOptions{}); !errors.Is(err, ErrSessionEnded) {
		t.Errorf("restart during the destroy: %v, want ErrSessionEnded", err)
	}
	if err := <-destroyed; err != nil {
		t.Fatal(err)
	}
}

// TestEndedSessionWaitIsBounded: a destroy that does not finish — the
// create of a session destroyed while starting, its in-process adapter
// ignoring the cancel — holds a lookup for endingWait at most, however
// long the caller's context.
func TestEndedSessionWaitIsBounded(t *testing.T) {
	old := endingWait
	endingWait = 200 * time.Millisecond
	t.Cleanup(func() { endingWait = old })
	h := newHarness(t, nil)
	spawning, release := make(chan struct{}), make(chan struct{})
	h.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		close(spawning)
		<-release // ignores its context
		return nil, errors.New("too late")
	})
	t.Cleanup(func() { close(release) })
	createAsync(t.Context(), h.m, "s1")
	<-spawning
	dctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_ = h.m.DestroySession(dctx, "s1")
	start := time.Now()
	_, err := h.m.RestartSession(context.Background(), "s1", RestartOptions{})
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the restart's lookup took %v, want endingWait's bound", took)
	}
	if err == nil {
		t.Error("restart of a session destroyed while starting succeeded")
	}
}

// TestCloseWhileStartingRecordsTheRow: a manager closed while a session
// starts cancels the start and writes the session's row, rather than
// leaving it STARTING for the next server to find.
func TestCloseWhileStartingRecordsTheRow(t *testing.T) {
	h := newHarness(t, nil)
	spawning := make(chan struct{})
	h.env.SetSpawn(func(ctx context.Context, _ shared.SpawnRequest) (shared.PTY, error) {
		close(spawning)
		<-ctx.Done()
		time.Sleep(100 * time.Millisecond) // a plugin a moment slow to answer the cancel
		return nil, context.Cause(ctx)
	})
	created := createAsync(t.Context(), h.m, "s1")
	<-spawning
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := h.m.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-created; err == nil {
		t.Error("the create of a session hung up while starting succeeded")
	}
	r, err := h.store.GetSession(context.Background(), "s1")
	if err != nil || r.Status == StatusStarting {
		t.Errorf("row after Close: %+v, %v; want it recorded, not STARTING", r, err)
	}
}

// hangingClosePTY is a plugin's session whose cleanup (Close) does not
// return until released is closed.
type hangingClosePTY struct {
	*fakeenv.PTY
	released chan struct{}
}

func (p hangingClosePTY) Close() error {
	<-p.released
	return p.PTY.Close()
}

// A plugin whose cleanup of a session hangs holds neither a destroy nor
// the Manager's Close past their deadlines; Close says so; and a new
// session of the same id still waits for the old one's cleanup.
func TestHangingCleanupWithinDeadlines(t *testing.T) {
	h := newHarness(t, nil)
	h.closeFailed = true // Close's error is this test's to check
	released := make(chan struct{})
	defer close(released)
	h.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p := fakeenv.NewPTY(req)
		h.env.Add(p)
		return hangingClosePTY{p, released}, nil
	})
	for _, id := range []string{"s1", "s2"} {
		if _, err := h.m.CreateSession(t.Context(), CreateOptions{ID: id, EnvironmentID: "fake"}); err != nil {
			t.Fatal(err)
		}
	}
	within := func(what string, d time.Duration, f func(ctx context.Context) error) error {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), d)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- f(ctx) }()
		select {
		case err := <-done:
			return err
		case <-time.After(d + 5*time.Second):
			t.Fatalf("%s with a deadline of %v had not returned 5 s past it", what, d)
			return nil
		}
	}
	if err := within("DestroySession", 300*time.Millisecond, func(ctx context.Context) error { return h.m.DestroySession(ctx, "s1") }); err != nil {
		t.Fatal(err)
	}
	r, err := h.store.GetSession(t.Context(), "s1")
	if err != nil || r.Status != StatusTerminated {
		t.Errorf("record %+v, %v; want TERMINATED", r, err)
	}
	err = within("CreateSession of the same id", 300*time.Millisecond, func(ctx context.Context) error {
		_, err := h.m.CreateSession(ctx, CreateOptions{ID: "s1", EnvironmentID: "fake"})
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("CreateSession of s1 during the old one's cleanup: %v, want it to wait until its deadline", err)
	}
	err = within("Close", 500*time.Millisecond, h.m.Close)
	if err == nil || !strings.Contains(err.Error(), "cleanups") {
		t.Errorf("Close = %v, want an error saying cleanups had not returned", err)
	}
}

// A stop that comes after its deadline still finds the cleanups that are
// done, or take a moment, done: not reported late at random.
func TestCloseAfterDeadlineNoCleanupsLate(t *testing.T) {
	for range 10 {
		h := newHarness(t, nil)
		h.closeFailed = true
		h.create(t, "s1")
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := h.m.Close(ctx); err != nil && strings.Contains(err.Error(), "cleanups") {
			t.Fatalf("Close after its deadline = %v; the fake's cleanup takes no time", err)
		}
	}
}

// A client closed by a destroy (an idle timeout's, an API DELETE) that
// looks the session up at once finds it ended, not ACTIVE while the
// plugin's kill takes its time.
func TestDestroyRecordedBeforeClientsClose(t *testing.T) {
	h := newHarness(t, nil)
	h.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p := fakeenv.NewPTY(req)
		h.env.Add(p)
		return &slowKillPTY{PTY: p, delay: 500 * time.Millisecond}, nil
	})
	if _, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "s1", EnvironmentID: "fake"}); err != nil {
		t.Fatal(err)
	}
	a := h.attach(t, "s1")
	destroyed := make(chan error, 1)
	go func() { destroyed <- h.m.DestroySession(t.Context(), "s1") }()
	for {
		f, _ := nextFrame(t, a)
		if f.Kind == FrameClose {
			break
		}
	}
	rec, err := h.m.GetSession(t.Context(), "s1")
	if err != nil || rec.Status != StatusTerminated || rec.ActiveConnections != 0 {
		t.Errorf("GetSession on the close: %s %d, %v; want TERMINATED with no client", rec.Status, rec.ActiveConnections, err)
	}
	if err := <-destroyed; err != nil {
		t.Fatal(err)
	}
}
