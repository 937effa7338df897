package core

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// TestRestartInPlace: the old process is killed and released after its
// output; the new one is spawned with the same request but the new
// variables, at the ring's end; an attached client reads on across both.
func TestRestartInPlace(t *testing.T) {
	h := newHarness(t, nil)
	rec, old := h.create(t, "s1")
	if old.Req.OutputOffset != 0 || rec.Restarts != 0 {
		t.Fatalf("first spawn at %d, restarts %d", old.Req.OutputOffset, rec.Restarts)
	}
	a := h.attach(t, "s1")
	old.Output(t, []byte("one"))
	if got := collect(t, a, 3); string(got) != "one" {
		t.Fatalf("output %q", got)
	}

	rec, err := h.m.RestartSession(context.Background(), "s1", RestartOptions{Env: map[string]string{"K": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Restarts != 1 || rec.Status != StatusActive {
		t.Fatalf("record after restart: %+v", rec)
	}
	if kills, closes := old.Counts(); kills != 1 || closes != 1 {
		t.Errorf("old PTY: %d kills, %d closes; want 1, 1", kills, closes)
	}
	nu := h.env.Last(t)
	if nu == old || nu.Req.OutputOffset != 3 || nu.Req.Env["K"] != "v" || nu.Req.SessionID != "s1" {
		t.Fatalf("new spawn %+v", nu.Req)
	}
	nu.Output(t, []byte("two"))
	if f, _ := nextFrame(t, a); f.Kind != FrameRestarted || f.Offset != 3 {
		t.Fatalf("frame %+v, want FrameRestarted at 3", f)
	}
	if got := collect(t, a, 3); string(got) != "two" {
		t.Fatalf("output after restart %q", got)
	}
	if _, err := a.Write([]byte("in")); err != nil {
		t.Fatal(err)
	}
	if got := <-nu.Input(); string(got) != "in" {
		t.Errorf("input reached %q", got)
	}
	eventually(t, "the restart count stored", func() bool {
		r, err := h.store.GetSession(context.Background(), "s1")
		return err == nil && r.Restarts == 1
	})

	// It exits on its own as any session does.
	nu.End(shared.ExitStatus{Code: 3})
	f, _ := nextFrame(t, a)
	if f.Kind != FrameExit || f.Exit.Code != 3 {
		t.Fatalf("frame %+v, want the new process's exit", f)
	}
	if _, err := h.m.RestartSession(context.Background(), "s1", RestartOptions{}); !errors.Is(err, ErrSessionEnded) {
		t.Errorf("restart of an ended session: %v, want ErrSessionEnded", err)
	}
}

// TestRestartRefusals: bad options and unknown sessions change nothing.
func TestRestartRefusals(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "s1")
	for _, tt := range []struct {
		name string
		id   string
		o    RestartOptions
		want error
	}{
		{"empty command[0]", "s1", RestartOptions{Command: []string{""}}, ErrInvalidArgument},
		{"NUL in the command", "s1", RestartOptions{Command: []string{"a\x00"}}, ErrInvalidArgument},
		{"bad variable", "s1", RestartOptions{Env: map[string]string{"A=B": ""}}, ErrInvalidArgument},
		{"unknown", "nosuch", RestartOptions{}, ErrSessionNotFound},
	} {
		if _, err := h.m.RestartSession(context.Background(), tt.id, tt.o); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if n := h.env.Count(); n != 1 {
		t.Errorf("%d spawns, want 1", n)
	}
}

// TestRestartDestroyedSession: a session destroyed, no longer in memory
// but TERMINATED in the store, is "ended" (create it again), not
// "not found", as GET still finds it.
func TestRestartDestroyedSession(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "s1")
	if err := h.m.DestroySession(t.Context(), "s1"); err != nil {
		t.Fatal(err)
	}
	_, err := h.m.RestartSession(t.Context(), "s1", RestartOptions{})
	if !errors.Is(err, ErrSessionEnded) || !strings.Contains(err.Error(), "create it again") {
		t.Errorf("restart of a destroyed session: %v, want ErrSessionEnded", err)
	}
	if n := h.env.Count(); n != 1 {
		t.Errorf("%d spawns, want 1", n)
	}
}

// TestRestartSpawnFails: when the new process cannot start, the session
// ends as ERROR with the reason, and its clients get the exit.
func TestRestartSpawnFails(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "s1")
	a := h.attach(t, "s1")
	h.env.SetSpawn(func(context.Context, shared.SpawnRequest) (shared.PTY, error) {
		return nil, errors.New("no such program")
	})
	if _, err := h.m.RestartSession(context.Background(), "s1", RestartOptions{}); !errors.Is(err, ErrSpawn) {
		t.Fatalf("restart: %v, want ErrSpawn", err)
	}
	f, _ := nextFrame(t, a)
	if f.Kind != FrameExit || f.Exit.Reason != "restart failed: no such program" {
		t.Fatalf("frame %+v, want the exit with the reason", f)
	}
	eventually(t, "the session recorded as ERROR", func() bool {
		r, err := h.store.GetSession(context.Background(), "s1")
		return err == nil && r.Status == StatusError && r.StatusReason == "restart failed: no such program"
	})
}

// TestRestartDestroyedWhileSpawning: a destroy during the restart ends the
// session; the process the restart started is killed and released.
func TestRestartDestroyedWhileSpawning(t *testing.T) {
	h := newHarness(t, nil)
	_, old := h.create(t, "s1")
	spawning, release := make(chan struct{}), make(chan struct{})
	var nu *fakeenv.PTY
	h.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		close(spawning)
		<-release
		nu = fakeenv.NewPTY(req)
		return nu, nil
	})
	var restartErr error
	var wg sync.WaitGroup
	wg.Go(func() { _, restartErr = h.m.RestartSession(context.Background(), "s1", RestartOptions{}) })
	<-spawning
	wg.Go(func() {
		if err := h.m.DestroySession(context.Background(), "s1"); err != nil {
			t.Error(err)
		}
	})
	eventually(t, "the destroy to take the session", func() bool { return tryAttach(h.m, "s1") != nil })
	close(release)
	wg.Wait()
	if !errors.Is(restartErr, ErrSessionNotFound) {
		t.Errorf("restart: %v, want ErrSessionNotFound", restartErr)
	}
	if kills, closes := nu.Counts(); kills != 1 || closes != 1 {
		t.Errorf("new PTY: %d kills, %d closes; want 1, 1", kills, closes)
	}
	if _, closes := old.Counts(); closes != 1 {
		t.Errorf("old PTY closed %d times, want once", closes)
	}
	r, err := h.store.GetSession(context.Background(), "s1")
	if err != nil || r.Status != StatusTerminated {
		t.Errorf("record %+v, %v; want TERMINATED", r, err)
	}
}

// TestRestartDestroyCancelsSpawn: a destroy while the restart's new
// process starts cancels that start, as a create's, rather than waiting
// for the spawn timeout; the session ends destroyed, and no
// session_restarted is published for the restart that did not happen.
func TestRestartDestroyCancelsSpawn(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "s1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := h.m.Subscribe(ctx)
	spawning := make(chan struct{})
	h.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		close(spawning)
		<-ctx.Done() // a plugin that never answers
		return nil, ctx.Err()
	})
	done := make(chan error, 1)
	go func() {
		_, err := h.m.RestartSession(context.Background(), "s1", RestartOptions{})
		done <- err
	}()
	<-spawning
	if err := h.m.DestroySession(context.Background(), "s1"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("restart: %v, want ErrSessionNotFound", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the restart's start was not cancelled by the destroy")
	}
	r, err := h.store.GetSession(context.Background(), "s1")
	if err != nil || r.Status != StatusTerminated {
		t.Errorf("record %+v, %v; want TERMINATED", r, err)
	}
	for {
		select {
		case e := <-evs:
			if e.Type == SessionRestarted {
				t.Fatalf("session_restarted published for a restart that did not happen")
			}
			if e.Type == SessionDestroyed {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no session_destroyed")
		}
	}
}

// TestNeverEnvAndUnsetEnv: the server's never-passed variables are
// removed from a session's env and added to its unset_env; a session's
// own unset_env goes to the plugin; a name set and unset is refused.
func TestNeverEnvAndUnsetEnv(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.NeverEnv = []string{"CLAUDECODE"} })
	_, err := h.m.CreateSession(context.Background(), CreateOptions{
		ID: "s1", EnvironmentID: "fake",
		Env:      map[string]string{"CLAUDECODE": "1", "A": "b"},
		UnsetEnv: []string{"X"},
	})
	if err != nil {
		t.Fatal(err)
	}
	req := h.env.Last(t).Req
	if _, ok := req.Env["CLAUDECODE"]; ok || req.Env["A"] != "b" || !slices.Equal(req.UnsetEnv, []string{"X", "CLAUDECODE"}) {
		t.Errorf("spawned with env %v, unset_env %v", req.Env, req.UnsetEnv)
	}
	for _, o := range []CreateOptions{
		{EnvironmentID: "fake", UnsetEnv: []string{""}},
		{EnvironmentID: "fake", UnsetEnv: []string{"A=B"}},
		{EnvironmentID: "fake", Env: map[string]string{"A": "1"}, UnsetEnv: []string{"A"}},
		{EnvironmentID: "fake", Input: make([]byte, MaxInputBytes+1)},
	} {
		if _, err := h.m.CreateSession(context.Background(), o); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%+v: %v, want ErrInvalidArgument", o.UnsetEnv, err)
		}
	}
	// A restart may not give the session a variable its unset_env names
	// either; the session runs on, not restarted.
	if _, err := h.m.RestartSession(context.Background(), "s1", RestartOptions{Env: map[string]string{"X": "1"}}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("restart with env X, which unset_env names: %v, want ErrInvalidArgument", err)
	}
	if rec, err := h.m.GetSession(context.Background(), "s1"); err != nil || rec.Status != StatusActive || rec.Restarts != 0 {
		t.Errorf("after the refused restart: %+v, %v; want ACTIVE, not restarted", rec, err)
	}
	if err := (Options{Store: h.store, Plugins: fakePlugins{}, NeverEnv: []string{"A=B"}}).Validate(); err == nil {
		t.Error("Validate accepted NeverEnv A=B")
	}
}

// TestRestartMarks: restartMark finds the first restart at or after an
// attachment's offset that it was not told of, and only the last
// maxRestartMarks restarts are kept.
func TestRestartMarks(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "s1")
	for i := range maxRestartMarks + 2 {
		p.Output(t, []byte("x"))
		eventually(t, "the output in the ring", func() bool { return ringEnd(h, "s1") == int64(i+1) })
		if _, err := h.m.RestartSession(context.Background(), "s1", RestartOptions{}); err != nil {
			t.Fatal(err)
		}
		p = h.env.Last(t)
	}
	h.m.mu.Lock()
	s := h.m.sessions["s1"]
	h.m.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, tt := range []struct {
		off, seen, want int64
		ok              bool
	}{
		{0, -1, 3, true}, // marks 1 and 2 are no longer kept
		{3, -1, 3, true},
		{3, 3, 4, true},
		{5, 4, 5, true},
		{18, -1, 18, true},
		{18, 18, 0, false},
		{19, -1, 0, false},
	} {
		got, ok := s.restartMark(tt.off, tt.seen)
		if got != tt.want || ok != tt.ok {
			t.Errorf("restartMark(%d, %d) = %d, %v; want %d, %v", tt.off, tt.seen, got, ok, tt.want, tt.ok)
		}
	}
}

// ringEnd returns the end of session id's ring.
func ringEnd(h *harness, id string) int64 {
	h.m.mu.Lock()
	s := h.m.sessions[id]
	h.m.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ring.End()
}

// TestRestartWhileRestarting: a second restart during the first is
// ErrRestartInProgress; the first goes through.
func TestRestartWhileRestarting(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "s1")
	spawning, release := make(chan struct{}), make(chan struct{})
	h.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		close(spawning)
		<-release
		p := fakeenv.NewPTY(req)
		h.env.Add(p)
		return p, nil
	})
	var first error
	var wg sync.WaitGroup
	wg.Go(func() { _, first = h.m.RestartSession(context.Background(), "s1", RestartOptions{}) })
	<-spawning
	if _, err := h.m.RestartSession(context.Background(), "s1", RestartOptions{}); !errors.Is(err, ErrRestartInProgress) {
		t.Errorf("second restart: %v, want ErrRestartInProgress", err)
	}
	close(release)
	wg.Wait()
	if first != nil {
		t.Fatalf("first restart: %v", first)
	}
	if rec, err := h.m.GetSession(context.Background(), "s1"); err != nil || rec.Restarts != 1 {
		t.Errorf("record %+v, %v; want 1 restart", rec, err)
	}
}

// heldWaitPTY's Wait says it was called, then waits for release: the pump,
// done reading at the process's end, is held before it records the exit.
type heldWaitPTY struct {
	*fakeenv.PTY
	waiting chan struct{}
	release chan struct{}
}

func (p *heldWaitPTY) Wait(ctx context.Context) (shared.ExitStatus, error) {
	close(p.waiting)
	<-p.release
	return p.PTY.Wait(ctx)
}

// A restart that comes after the process ended on its own, while the pump
// waits for its exit status: the session has ended, at once, and its exit
// is recorded as it was.
func TestRestartRacingTheExit(t *testing.T) {
	h := newHarness(t, nil)
	var p *heldWaitPTY
	h.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p = &heldWaitPTY{PTY: fakeenv.NewPTY(req), waiting: make(chan struct{}), release: make(chan struct{})}
		h.env.Add(p.PTY)
		return p, nil
	})
	h.create(t, "x")
	p.End(shared.ExitStatus{Code: 4})
	<-p.waiting
	start := time.Now()
	_, err := h.m.RestartSession(t.Context(), "x", RestartOptions{})
	if !errors.Is(err, ErrSessionEnded) || time.Since(start) > 2*time.Second {
		t.Errorf("restart of a session whose process ended: %v after %v, want ErrSessionEnded at once", err, time.Since(start))
	}
	close(p.release)
	eventually(t, "the exit", func() bool {
		rec, err := h.m.GetSession(t.Context(), "x")
		return err == nil && rec.Status == StatusTerminated
	})
	if rec, _ := h.m.GetSession(t.Context(), "x"); rec.ExitCode == nil || *rec.ExitCode != 4 || rec.Restarts != 0 {
		t.Errorf("record %+v, want exit code 4 and no restart", rec)
	}
}

// A restart's caller that goes away while the new process starts (a
// client that hung up) does not end the session: the old process is gone
// already, and the new one starts all the same.
func TestRestartCallerGone(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "s1")
	started := make(chan struct{})
	h.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		close(started)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(300 * time.Millisecond):
			p := fakeenv.NewPTY(req)
			h.env.Add(p)
			return p, nil
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	if _, err := h.m.RestartSession(ctx, "s1", RestartOptions{}); err != nil {
		t.Errorf("restart: %v", err)
	}
	rec, err := h.m.GetSession(context.Background(), "s1")
	if err != nil || rec.Status != StatusActive || rec.Restarts != 1 {
		t.Errorf("session %s %q, %d restarts (%v); want ACTIVE, restarted once", rec.Status, rec.StatusReason, rec.Restarts, err)
	}
}
