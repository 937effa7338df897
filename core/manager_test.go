package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

func TestCreateSession(t *testing.T) {
	h := newHarness(t, nil)
	events := h.m.Subscribe(t.Context())
	rec, p := h.create(t, "s1")
	if rec.Status != StatusActive || rec.Cols != 80 || rec.Rows != 24 {
		t.Errorf("record = %+v, want ACTIVE 80x24", rec)
	}
	if p.Req.SessionID != "s1" || p.Req.EnvironmentType != "FAKE" || p.Req.Size != (shared.Size{Cols: 80, Rows: 24}) {
		t.Errorf("spawn request = %+v", p.Req)
	}
	if e := <-events; e.Type != SessionCreated || e.SessionID != "s1" {
		t.Errorf("event = %+v, want session_created s1", e)
	}
	got, err := h.m.GetSession(t.Context(), "s1")
	if err != nil || got.Status != StatusActive {
		t.Errorf("GetSession = %+v, %v", got, err)
	}
	if err := h.m.writer.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if row := h.store.row(t, "s1"); row.Status != StatusActive {
		t.Errorf("stored status = %s, want ACTIVE", row.Status)
	}
}

func TestCreateSessionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts CreateOptions
		want error
	}{
		{"unknown environment", CreateOptions{ID: "a", EnvironmentID: "nope"}, ErrEnvironmentNotFound},
		{"no environment", CreateOptions{ID: "a"}, ErrInvalidArgument},
		{"bad id", CreateOptions{ID: "a b/c", EnvironmentID: "fake"}, ErrInvalidArgument},
		{"zero cols", CreateOptions{ID: "a", EnvironmentID: "fake", Cols: 0, Rows: 10}, ErrInvalidArgument},
		{"too big", CreateOptions{ID: "a", EnvironmentID: "fake", Cols: 5000, Rows: 5000}, ErrInvalidArgument},
		{"bad env name", CreateOptions{ID: "a", EnvironmentID: "fake", Env: map[string]string{"A=B": "c"}}, ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			_, err := h.m.CreateSession(t.Context(), tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if h.env.Count() != 0 {
				t.Error("a process was spawned")
			}
			if _, err := h.m.Attach(t.Context(), "a"); !errors.Is(err, ErrSessionNotFound) {
				t.Errorf("session left in the map: %v", err)
			}
		})
	}
}

func TestCreateDuplicateID(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "dup")
	_, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "dup", EnvironmentID: "fake"})
	if !errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("err = %v, want ErrAlreadyExists", err)
	}
	if h.env.Count() != 1 {
		t.Errorf("spawned %d, want 1", h.env.Count())
	}
}

func TestConcurrentCreatesSpawnOnce(t *testing.T) {
	h := newHarness(t, nil)
	release := make(chan struct{})
	var spawns atomic.Int32
	h.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		spawns.Add(1)
		<-release // hold the first create inside Spawn
		return fakeenv.NewPTY(req), nil
	})
	const n = 10
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := h.m.CreateSession(context.Background(), CreateOptions{ID: "same", EnvironmentID: "fake"})
			errs <- err
		})
	}
	// All but one fail at once, while the winner is still spawning.
	for range n - 1 {
		if err := <-errs; !errors.Is(err, ErrAlreadyExists) {
			t.Errorf("err = %v, want ErrAlreadyExists", err)
		}
	}
	close(release)
	if err := <-errs; err != nil {
		t.Errorf("winner: %v", err)
	}
	wg.Wait()
	if got := spawns.Load(); got != 1 {
		t.Errorf("spawned %d times, want 1", got)
	}
}

func TestSpawnFailureLeavesNothing(t *testing.T) {
	h := newHarness(t, nil)
	events := h.m.Subscribe(t.Context())
	boom := fmt.Errorf("no such directory: %w", shared.ErrInvalidArgument)
	h.env.SetSpawn(func(context.Context, shared.SpawnRequest) (shared.PTY, error) { return nil, boom })
	_, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "bad", EnvironmentID: "fake"})
	if !errors.Is(err, ErrSpawn) || !errors.Is(err, shared.ErrInvalidArgument) {
		t.Fatalf("err = %v, want ErrSpawn wrapping the plugin's error", err)
	}
	if e := <-events; e.Type != SessionError || !errors.Is(e.Err, boom) {
		t.Errorf("event = %+v, want session_error", e)
	}
	if _, err := h.m.Attach(t.Context(), "bad"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("failed session still attachable: %v", err)
	}
	rec, err := h.m.GetSession(t.Context(), "bad")
	if err != nil || rec.Status != StatusError || rec.StatusReason == "" {
		t.Errorf("GetSession = %+v, %v; want ERROR with reason", rec, err)
	}
	// The id is free again.
	h.env.SetSpawn(nil)
	h.create(t, "bad")
}

func TestCreateWithoutPlugin(t *testing.T) {
	h := newHarness(t, nil)
	h.store.envs["orphan"] = Environment{ID: "orphan", Type: "GONE"}
	_, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "x", EnvironmentID: "orphan"})
	if !errors.Is(err, ErrNoPlugin) {
		t.Fatalf("err = %v, want ErrNoPlugin", err)
	}
}

func TestDestroySession(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "d")
	a1, a2 := h.attach(t, "d"), h.attach(t, "d")
	events := h.m.Subscribe(t.Context())
	if err := h.m.DestroySession(t.Context(), "d"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []*Attachment{a1, a2} {
		f, _ := nextFrame(t, a)
		if f.Kind != FrameClose || f.CloseCode != 1000 || f.CloseReason != "Session destroyed" {
			t.Errorf("frame = %+v, want close 1000 Session destroyed", f)
		}
	}
	if kills, closes := p.Counts(); kills != 1 || closes != 1 {
		t.Errorf("kills=%d closes=%d, want 1 and 1", kills, closes)
	}
	row := h.store.row(t, "d")
	if row.Status != StatusTerminated || row.ActiveConnections != 0 {
		t.Errorf("row = %+v, want TERMINATED with 0 connections", row)
	}
	var types []EventType
	for e := range events {
		types = append(types, e.Type)
		if e.Type == SessionDestroyed {
			break
		}
	}
	if types[len(types)-1] != SessionDestroyed {
		t.Errorf("events = %v", types)
	}
	// Unknown and repeated destroys are no-ops.
	for _, id := range []string{"d", "never"} {
		if err := h.m.DestroySession(t.Context(), id); err != nil {
			t.Errorf("DestroySession(%q) = %v", id, err)
		}
	}
	if kills, _ := p.Counts(); kills != 1 {
		t.Errorf("killed %d times", kills)
	}
}

func TestDestroyGoesOnWhenKillAndCleanupFail(t *testing.T) {
	h := newHarness(t, nil)
	h.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p := fakeenv.NewPTY(req)
		p.KillErr = errors.New("kill failed")
		p.CloseErr = errors.New("cleanup failed")
		h.env.Add(p)
		return p, nil
	})
	_, p := h.create(t, "f")
	if err := h.m.DestroySession(t.Context(), "f"); err != nil {
		t.Fatal(err)
	}
	if kills, closes := p.Counts(); kills != 1 || closes != 1 {
		t.Errorf("kills=%d closes=%d", kills, closes)
	}
	if row := h.store.row(t, "f"); row.Status != StatusTerminated {
		t.Errorf("status = %s, want TERMINATED", row.Status)
	}
}

func TestFanOutAndInput(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "f")
	a1, a2 := h.attach(t, "f"), h.attach(t, "f")
	p.Output(t, []byte("hello "))
	p.Output(t, []byte("world"))
	for i, a := range []*Attachment{a1, a2} {
		if got := collect(t, a, 11); string(got) != "hello world" {
			t.Errorf("client %d got %q", i, got)
		}
	}
	for i, a := range []*Attachment{a1, a2} {
		msg := fmt.Sprintf("typed by %d", i)
		if _, err := a.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if got := <-p.Input(); string(got) != msg {
			t.Errorf("input = %q, want %q", got, msg)
		}
	}
}

func TestLateJoinerSeesReplayAndHistorySurvivesLeaving(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "r")
	p.Output(t, []byte("before anyone attached\r\n"))
	a := h.attach(t, "r")
	if a.Hello().Offset != 0 {
		t.Errorf("hello offset = %d, want 0", a.Hello().Offset)
	}
	if got := collect(t, a, 24); string(got) != "before anyone attached\r\n" {
		t.Errorf("replay = %q", got)
	}
	a.Close()
	p.Output(t, []byte("while nobody watched"))
	b := h.attach(t, "r")
	want := "before anyone attached\r\nwhile nobody watched"
	if got := collect(t, b, len(want)); string(got) != want {
		t.Errorf("replay after rejoin = %q", got)
	}
}

func TestRecreateAfterDestroyHasNoOldOutput(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "again")
	p.Output(t, []byte("first life"))
	if err := h.m.DestroySession(t.Context(), "again"); err != nil {
		t.Fatal(err)
	}
	_, p2 := h.create(t, "again")
	a := h.attach(t, "again")
	p2.Output(t, []byte("second"))
	if got := collect(t, a, 6); string(got) != "second" {
		t.Errorf("got %q, want only the new session's output", got)
	}
}

func TestMultibyteSplitAcrossReads(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "u")
	a := h.attach(t, "u")
	smile := []byte("🙂") // 4 bytes
	p.Output(t, append([]byte("a"), smile[:2]...))
	p.Output(t, append(smile[2:], 'b'))
	if got := collect(t, a, 6); !bytes.Equal(got, []byte("a🙂b")) {
		t.Errorf("got % x", got)
	}
}

func TestExitDeliversAllOutputFirst(t *testing.T) {
	// A ring larger than the output: no client can fall out of it.
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = 2 << 20 })
	_, p := h.create(t, "x")
	a := h.attach(t, "x")
	events := h.m.Subscribe(t.Context())
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	go func() {
		p.WriteOutput(big)
		p.End(shared.ExitStatus{Code: 3})
	}()
	f, out := nextFrame(t, a)
	if f.Kind != FrameExit || f.Exit.Code != 3 {
		t.Fatalf("frame = %+v, want exit 3", f)
	}
	if !bytes.Equal(out, big) {
		t.Fatalf("got %d bytes before exit, want %d", len(out), len(big))
	}
	if f, _ := nextFrame(t, a); f.Kind != FrameClose || f.CloseCode != 1000 || f.CloseReason != "Session exited" {
		t.Errorf("after exit: %+v", f)
	}
	if e := <-events; e.Type != SessionExited || e.Exit.Code != 3 {
		t.Errorf("event = %+v", e)
	}
	rec, err := h.m.GetSession(t.Context(), "x")
	if err != nil || rec.Status != StatusTerminated || rec.ExitCode == nil || *rec.ExitCode != 3 {
		t.Errorf("record = %+v, %v", rec, err)
	}
	// The ended session lingers: a reconnecting client sees the end.
	b := h.attach(t, "x")
	if f, _ := nextFrame(t, b); f.Kind != FrameExit || f.Exit.Code != 3 {
		t.Errorf("late client: %+v", f)
	}
	eventually(t, "the adapter's cleanup, once the exit is stored", func() bool {
		_, closes := p.Counts()
		return closes == 1
	})
}

func TestExitBySignal(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "sig")
	a := h.attach(t, "sig")
	p.End(shared.ExitStatus{Code: 137, Signal: "SIGKILL"})
	f, _ := nextFrame(t, a)
	if f.Kind != FrameExit || f.Exit.Signal != "SIGKILL" || f.Exit.Code != 137 {
		t.Errorf("frame = %+v", f)
	}
}

func TestLingerEnds(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Linger = 20 * time.Millisecond })
	_, p := h.create(t, "l")
	p.End(shared.ExitStatus{Code: 0})
	eventually(t, "the session to leave the map", func() bool {
		return errors.Is(tryAttach(h.m, "l"), ErrSessionNotFound)
	})
	rec, err := h.m.GetSession(t.Context(), "l")
	if err != nil || rec.Status != StatusTerminated || rec.ExitCode == nil || *rec.ExitCode != 0 {
		t.Errorf("record = %+v, %v", rec, err)
	}
}

// A client that has not read the end of the output when the linger runs
// out still gets it, and the exit, before the close.
func TestLingerEndDrainsAttachedClient(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Linger = time.Millisecond })
	_, p := h.create(t, "ld")
	a := h.attach(t, "ld")
	p.Output(t, []byte("the last words"))
	p.End(shared.ExitStatus{Code: 5})
	eventually(t, "the linger to run out", func() bool {
		return errors.Is(tryAttach(h.m, "ld"), ErrSessionNotFound)
	})
	f, out := nextFrame(t, a)
	if f.Kind != FrameExit || f.Exit.Code != 5 || string(out) != "the last words" {
		t.Fatalf("after the linger: %q then %+v, want the output then exit 5", out, f)
	}
	if f, _ := nextFrame(t, a); f.Kind != FrameClose || f.CloseCode != CloseNormal || f.CloseReason != CloseReasonExited {
		t.Errorf("close = %+v", f)
	}
}

func TestCreateReplacesExitedSession(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "re")
	p.End(shared.ExitStatus{Code: 1})
	eventually(t, "exit", func() bool {
		rec, _ := h.m.GetSession(t.Context(), "re")
		return rec.Status == StatusTerminated
	})
	rec, _ := h.create(t, "re")
	if rec.Status != StatusActive || rec.ExitCode != nil {
		t.Errorf("replacement = %+v", rec)
	}
}

func TestPluginCrashEndsSessionWithError(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "c")
	a := h.attach(t, "c")
	p.Crash()
	f, _ := nextFrame(t, a)
	if f.Kind != FrameExit || f.Exit.Reason != ReasonPluginCrashed {
		t.Fatalf("frame = %+v, want exit with plugin_crashed", f)
	}
	if f, _ := nextFrame(t, a); f.Kind != FrameClose || f.CloseCode != ClosePluginFailed {
		t.Errorf("close = %+v", f)
	}
	rec, _ := h.m.GetSession(t.Context(), "c")
	if rec.Status != StatusError || rec.StatusReason != ReasonPluginCrashed {
		t.Errorf("record = %+v", rec)
	}
}

// A plugin that breaks the protocol ends the session with an error that
// says so, not as a crash: the plugin process may well be running.
func TestPluginProtocolErrorIsNoCrash(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "pe")
	a := h.attach(t, "pe")
	p.Fail(fmt.Errorf("%w: unexpected session frame", shared.ErrPluginProtocol))
	f, _ := nextFrame(t, a)
	if f.Kind != FrameExit || !strings.Contains(f.Exit.Reason, "broke the protocol") {
		t.Fatalf("frame = %+v, want exit with the protocol error", f)
	}
	if f, _ := nextFrame(t, a); f.Kind != FrameClose || f.CloseCode != CloseNormal {
		t.Errorf("close = %+v, want %d", f, CloseNormal)
	}
	rec, _ := h.m.GetSession(t.Context(), "pe")
	if rec.Status != StatusError || !strings.Contains(rec.StatusReason, "broke the protocol") {
		t.Errorf("record = %+v", rec)
	}
	// Once the end is stored, the plugin is told to end the session.
	eventually(t, "the PTY closed: the plugin must end the session", func() bool {
		_, closes := p.Counts()
		return closes == 1
	})
}

func TestAbnormalEndReportedByPlugin(t *testing.T) {
	h := newHarness(t, nil)
	events := h.m.Subscribe(t.Context())
	_, p := h.create(t, "lost")
	a := h.attach(t, "lost")
	p.Output(t, []byte("last words"))
	p.End(shared.ExitStatus{Code: -1, Reason: "docker daemon connection lost"})
	f, out := nextFrame(t, a)
	if string(out) != "last words" || f.Kind != FrameExit || f.Exit.Reason != "docker daemon connection lost" {
		t.Fatalf("got %q then %+v", out, f)
	}
	rec, _ := h.m.GetSession(t.Context(), "lost")
	if rec.Status != StatusError || rec.StatusReason != "docker daemon connection lost" {
		t.Errorf("record = %+v", rec)
	}
	for e := range events {
		if e.Type == SessionError {
			if e.Err == nil || e.Err.Error() != "docker daemon connection lost" {
				t.Errorf("event error = %v", e.Err)
			}
			break
		}
	}
}

func TestResize(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "rs")
	a1, a2 := h.attach(t, "rs"), h.attach(t, "rs")
	for _, bad := range [][2]int{{0, 0}, {5000, 5000}, {-1, 10}, {10, 1001}} {
		if err := a1.Resize(t.Context(), bad[0], bad[1]); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Resize(%v) = %v, want ErrInvalidArgument", bad, err)
		}
	}
	if err := a1.Resize(t.Context(), 100, 30); err != nil {
		t.Fatal(err)
	}
	if err := a2.Resize(t.Context(), 120, 40); err != nil {
		t.Fatal(err)
	}
	if got := <-p.Resizes(); got != (shared.Size{Cols: 100, Rows: 30}) {
		t.Errorf("first resize = %+v", got)
	}
	if got := <-p.Resizes(); got != (shared.Size{Cols: 120, Rows: 40}) {
		t.Errorf("second resize = %+v", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for _, a := range []*Attachment{a1, a2} {
		f, err := a.Next(ctx, make([]byte, 64))
		if err != nil || f.Kind != FrameResize || f.Size != (shared.Size{Cols: 120, Rows: 40}) {
			t.Errorf("frame = %+v, %v; want the latest size", f, err)
		}
	}
	if a3 := h.attach(t, "rs"); a3.Hello().Size != (shared.Size{Cols: 120, Rows: 40}) {
		t.Errorf("new client told %+v", a3.Hello().Size)
	}
}

func TestSlowClientIsResetAndDoesNotSlowOthers(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = 8 << 10 })
	_, p := h.create(t, "slow")
	slow := h.attach(t, "slow") // never reads until the end
	fast := h.attach(t, "slow")
	line := []byte("0123456789012345678901234567890123456789012345678901234567890\r\n")
	total := 0
	for range 1000 { // ~63 KiB, far more than the ring holds
		p.Output(t, line)
		total += len(line)
		collect(t, fast, len(line))
	}
	f, _ := nextFrame(t, slow)
	if f.Kind != FrameReset {
		t.Fatalf("slow client got %+v, want reset", f)
	}
	if f.Offset <= 0 || f.Offset%int64(len(line)) != 0 {
		t.Errorf("reset offset %d is not a line start", f.Offset)
	}
	rest := collect(t, slow, total-int(f.Offset))
	if !bytes.HasPrefix(rest, line) {
		t.Errorf("replay after reset starts with %q", rest[:20])
	}
}

func TestIdleTimeout(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.IdleTimeout = 30 * time.Millisecond })
	events := h.m.Subscribe(t.Context())
	_, p := h.create(t, "idle")
	a := h.attach(t, "idle")
	a.Close()
	if err := h.m.writer.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for e := range events {
		if e.Type == SessionDestroyed {
			break
		}
	}
	if kills, _ := p.Counts(); kills != 1 {
		t.Errorf("kills = %d", kills)
	}
	rec, _ := h.m.GetSession(t.Context(), "idle")
	if rec.Status != StatusTerminated || rec.StatusReason != ReasonIdleTimeout {
		t.Errorf("record = %+v", rec)
	}
}

func TestIdleStatusAndReattachCancelsTimer(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.IdleTimeout = time.Hour })
	h.create(t, "i")
	a := h.attach(t, "i")
	a.Close()
	rec, _ := h.m.GetSession(t.Context(), "i")
	if rec.Status != StatusIdle || rec.ActiveConnections != 0 {
		t.Errorf("after last detach: %+v", rec)
	}
	h.attach(t, "i")
	rec, _ = h.m.GetSession(t.Context(), "i")
	if rec.Status != StatusActive || rec.ActiveConnections != 1 {
		t.Errorf("after reattach: %+v", rec)
	}
	if h.idleTimer("i") != nil {
		t.Error("idle timer still armed with a client attached")
	}
}

func TestDestroyWhenIdle(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.IdleTimeout = DestroyWhenIdle })
	events := h.m.Subscribe(t.Context())
	h.create(t, "now")
	a := h.attach(t, "now")
	a.Close()
	for e := range events {
		if e.Type == SessionDestroyed {
			return
		}
	}
}

func TestActiveConnectionsRecorded(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "ac")
	a := h.attach(t, "ac")
	h.attach(t, "ac")
	if err := h.m.writer.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if row := h.store.row(t, "ac"); row.ActiveConnections != 2 {
		t.Errorf("active_connections = %d, want 2", row.ActiveConnections)
	}
	a.Close()
	a.Close() // twice is fine
	if err := h.m.writer.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if row := h.store.row(t, "ac"); row.ActiveConnections != 1 {
		t.Errorf("active_connections = %d, want 1", row.ActiveConnections)
	}
	if _, err := h.m.Attach(t.Context(), "missing"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("Attach(missing) = %v", err)
	}
}

func TestStoreErrorsAreRetriedAndNeverKillSessions(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "st")
	h.store.mu.Lock()
	h.store.failNext = 3
	h.store.mu.Unlock()
	a := h.attach(t, "st")
	p.Output(t, []byte("still fine"))
	collect(t, a, 10)
	eventually(t, "the row to be written after retries", func() bool {
		rec, err := h.store.GetSession(t.Context(), "st")
		return err == nil && rec.ActiveConnections == 1
	})
}

func TestCloseHangsUpEverything(t *testing.T) {
	h := newHarness(t, nil)
	_, p1 := h.create(t, "c1")
	_, p2 := h.create(t, "c2")
	a := h.attach(t, "c1")
	p1.Output(t, []byte("last words"))

	// The client sees the last output, the exit, then close 1001; Close
	// waits for it to detach.
	got := make(chan []Frame, 1)
	go func() {
		var frames []Frame
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		buf := make([]byte, 64)
		for {
			f, err := a.Next(ctx, buf)
			if err != nil {
				break
			}
			f.Data = bytes.Clone(f.Data)
			frames = append(frames, f)
			if f.Kind == FrameClose {
				break
			}
		}
		a.Close()
		got <- frames
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := h.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("Close waited for its deadline")
	}
	if err := h.m.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	frames := <-got
	var out []byte
	var kinds []FrameKind
	for _, f := range frames {
		if f.Kind == FrameOutput {
			out = append(out, f.Data...)
		} else {
			kinds = append(kinds, f.Kind)
		}
	}
	last := frames[len(frames)-1]
	if string(out) != "last words" || !slices.Equal(kinds, []FrameKind{FrameExit, FrameClose}) || last.CloseCode != CloseGoingAway {
		t.Errorf("client got %q then %v (%+v)", out, kinds, last)
	}
	for _, p := range []*fakeenv.PTY{p1, p2} {
		if kills, closes := p.Counts(); kills != 1 || closes != 1 {
			t.Errorf("kills=%d closes=%d", kills, closes)
		}
	}
	for _, id := range []string{"c1", "c2"} {
		if row := h.store.row(t, id); row.Status != StatusTerminated || row.StatusReason != ReasonServerShutdown {
			t.Errorf("row = %+v", row)
		}
	}
	if _, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "late", EnvironmentID: "fake"}); !errors.Is(err, ErrClosed) {
		t.Errorf("create after Close = %v", err)
	}
}

// A session that ended on its own just before the shutdown: its client
// still gets what it had not read, the exit, and then the close that says
// the session exited, not a close that cuts them off.
func TestCloseDrainsAnExitedSession(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "x")
	a := h.attach(t, "x")
	p.Output(t, []byte("the last lines\r\n"))
	p.End(shared.ExitStatus{Code: 3})
	eventually(t, "the exit", func() bool {
		h.m.mu.Lock()
		s := h.m.sessions["x"]
		h.m.mu.Unlock()
		return s.hasExited()
	})
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- h.m.Close(ctx)
	}()
	eventually(t, "Close to begin", func() bool {
		h.m.mu.Lock()
		defer h.m.mu.Unlock()
		return h.m.closed
	})
	var out []byte
	var kinds []FrameKind
	var last Frame
	buf := make([]byte, 64)
	for last.Kind != FrameClose {
		f, err := a.Next(t.Context(), buf)
		if err != nil {
			t.Fatal(err)
		}
		if f.Kind == FrameOutput {
			out = append(out, f.Data...)
		} else {
			kinds = append(kinds, f.Kind)
			if f.Kind == FrameExit && f.Exit.Code != 3 {
				t.Errorf("exit frame %+v, want code 3", f.Exit)
			}
		}
		last = f
	}
	a.Close()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if string(out) != "the last lines\r\n" || !slices.Equal(kinds, []FrameKind{FrameExit, FrameClose}) ||
		last.CloseCode != CloseNormal || last.CloseReason != CloseReasonExited {
		t.Errorf("client got %q then %v (%d %q), want the last lines, the exit, and close %d %q",
			out, kinds, last.CloseCode, last.CloseReason, CloseNormal, CloseReasonExited)
	}
	if row := h.store.row(t, "x"); row.Status != StatusTerminated || row.ExitCode == nil || *row.ExitCode != 3 {
		t.Errorf("row = %+v", row)
	}
}

// slowKillPTY's process ends only some time after Kill, as a process
// that takes its SIGHUP's time to go does.
type slowKillPTY struct {
	*fakeenv.PTY
	delay time.Duration
}

func (p *slowKillPTY) Kill(ctx context.Context) error {
	time.AfterFunc(p.delay, func() { p.PTY.Kill(ctx) })
	return nil
}

// A session created under the id of one still being destroyed waits for
// that teardown, whose record it is to write: the old session's late
// writes (TERMINATED, its exit code) must not land on the new one's row.
// A second destroy of the same id waits for it too.
func TestCreateWaitsForTheTeardownOfItsID(t *testing.T) {
	h := newHarness(t, nil)
	first := true
	h.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p := fakeenv.NewPTY(req)
		h.env.Add(p)
		if first {
			first = false
			return &slowKillPTY{PTY: p, delay: 200 * time.Millisecond}, nil
		}
		return p, nil
	})
	h.create(t, "x")
	destroyed := make(chan struct{})
	go func() {
		defer close(destroyed)
		if err := h.m.DestroySession(context.Background(), "x"); err != nil {
			t.Error(err)
		}
	}()
	eventually(t, "x to be taken out of the map", func() bool { return !h.m.isLive("x") })
	if err := h.m.DestroySession(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	// The teardown writes the record and flushes it before it is done.
	if row := h.store.row(t, "x"); row.Status != StatusTerminated {
		t.Errorf("a second DestroySession returned before the first's teardown was done: x is %s", row.Status)
	}
	<-destroyed
	// Again, the create racing the teardown this time.
	h.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p := fakeenv.NewPTY(req)
		h.env.Add(p)
		return &slowKillPTY{PTY: p, delay: 200 * time.Millisecond}, nil
	})
	h.create(t, "y")
	destroyed = make(chan struct{})
	go func() {
		defer close(destroyed)
		h.m.DestroySession(context.Background(), "y")
	}()
	eventually(t, "y to be taken out of the map", func() bool { return !h.m.isLive("y") })
	h.env.SetSpawn(nil)
	if _, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "y", EnvironmentID: "fake"}); err != nil {
		t.Fatal(err)
	}
	<-destroyed
	if err := h.m.writer.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if row := h.store.row(t, "y"); row.Status != StatusActive || row.ExitCode != nil {
		t.Errorf("the new, running session y is recorded as %s, exit code %v", row.Status, row.ExitCode)
	}
	if _, err := h.m.PruneEnded(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.GetSession(t.Context(), "y"); err != nil {
		t.Errorf("PruneEnded deleted the row of y, which runs: %v", err)
	}

	// A create given up while it waits says why, and leaves nothing.
	h.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p := fakeenv.NewPTY(req)
		h.env.Add(p)
		return &slowKillPTY{PTY: p, delay: time.Second}, nil
	})
	h.create(t, "z")
	go h.m.DestroySession(context.Background(), "z")
	eventually(t, "z to be taken out of the map", func() bool { return !h.m.isLive("z") })
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.m.CreateSession(ctx, CreateOptions{ID: "z", EnvironmentID: "fake"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("create while z is still being destroyed, given up: %v", err)
	}
}

// TestCloseGivesUpOnClientsAtItsDeadline: a client that never reads holds
// Close until its deadline at most, and Close says so.
func TestCloseGivesUpOnClientsAtItsDeadline(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "held")
	h.attach(t, "held") // never reads, never detaches until cleanup
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := h.m.Close(ctx)
	h.closeFailed = err != nil
	if err == nil || !strings.Contains(err.Error(), "1 clients had not detached") {
		t.Errorf("Close past its deadline with a client attached: %v; want an error saying so", err)
	}
	if row := h.store.row(t, "held"); row.Status != StatusTerminated {
		t.Errorf("row = %+v", row)
	}
}

// TestCloseLeavesAClientThatDoesNotRead: a client that never reads holds
// Close for detachWait at most, not its whole deadline, which the
// plugins' shutdown and the store's writes after it need.
func TestCloseLeavesAClientThatDoesNotRead(t *testing.T) {
	defer func(d time.Duration) { detachWait = d }(detachWait)
	detachWait = 100 * time.Millisecond
	h := newHarness(t, nil)
	h.create(t, "held")
	h.attach(t, "held") // never reads, never detaches until cleanup
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := h.m.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if left, ok := ctx.Deadline(); !ok || time.Until(left) < 50*time.Second {
		t.Errorf("Close took %v of its minute, waiting for a client that does not read", time.Minute-time.Until(left))
	}
	if row := h.store.row(t, "held"); row.Status != StatusTerminated {
		t.Errorf("row = %+v", row)
	}
}

func TestListSessions(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "one")
	h.create(t, "two")
	if err := h.m.DestroySession(t.Context(), "one"); err != nil {
		t.Fatal(err)
	}
	recs, err := h.m.ListSessions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Status{}
	for _, r := range recs {
		got[r.ID] = r.Status
	}
	if got["one"] != StatusTerminated || got["two"] != StatusActive || len(got) != 2 {
		t.Errorf("sessions = %v", got)
	}
}

func TestSlowSubscriberNeverBlocks(t *testing.T) {
	h := newHarness(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	stuck := h.m.Subscribe(ctx) // never read
	for i := range eventBufferSize + 10 {
		h.m.publish(Event{Type: SessionCreated, SessionID: fmt.Sprint(i)})
	}
	if len(stuck) != eventBufferSize {
		t.Errorf("buffered %d", len(stuck))
	}
	cancel()
	eventually(t, "the channel to close", func() bool {
		for range stuck {
		}
		return true
	})
}

func TestReconcileLeftoverRows(t *testing.T) {
	h := newHarness(t, nil)
	now := time.Now().UTC() // recent: retention must not purge "ended"
	for _, rec := range []SessionRecord{
		{ID: "was-active", EnvironmentID: "fake", Status: StatusActive, ActiveConnections: 2, CreatedAt: now, UpdatedAt: now},
		{ID: "was-idle", EnvironmentID: "fake", Status: StatusIdle, CreatedAt: now, UpdatedAt: now},
		{ID: "ended", EnvironmentID: "fake", Status: StatusTerminated, CreatedAt: now, UpdatedAt: now},
	} {
		if err := h.store.SaveSession(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	h.create(t, "running-now")
	if err := h.m.writer.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	n, err := h.m.Reconcile(t.Context())
	if err != nil || n != 2 {
		t.Fatalf("Reconcile = %d, %v; want 2", n, err)
	}
	for id, want := range map[string]Status{
		"was-active": StatusError, "was-idle": StatusError, "ended": StatusTerminated, "running-now": StatusActive,
	} {
		row := h.store.row(t, id)
		if row.Status != want {
			t.Errorf("%s: status %s, want %s", id, row.Status, want)
		}
		if want == StatusError && (row.StatusReason != ReasonServerLost || row.ActiveConnections != 0) {
			t.Errorf("%s: %+v", id, row)
		}
	}
}

// stuckPTY's output never ends, whatever Kill and Close do: a plugin that
// no longer answers.
type stuckPTY struct {
	*fakeenv.PTY
	release chan struct{}
}

func (p *stuckPTY) Read(b []byte) (int, error) {
	n, err := p.PTY.Read(b)
	if err != nil {
		<-p.release
	}
	return n, err
}

func (p *stuckPTY) Kill(context.Context) error { return nil }

// Close keeps to its deadline when a session's output never ends: it says
// so, and the caller can go on to shut the plugins down.
func TestCloseKeepsToItsDeadlineWithAStuckPump(t *testing.T) {
	release := make(chan struct{})
	var fake *fakeenv.PTY
	defer func() {
		// Unstuck, so that the pump ends with the test.
		close(release)
		fake.Kill(context.Background())
	}()
	// Not newHarness's manager, whose cleanup expects Close to succeed.
	env := &fakeenv.Env{}
	store := newMemStore()
	store.envs["fake"] = Environment{ID: "fake", Name: "fake", Type: "FAKE"}
	store.envOrder = []string{"fake"}
	m, err := New(Options{Store: store, Plugins: fakePlugins{"FAKE": env}, IdleTimeout: NoIdleTimeout})
	if err != nil {
		t.Fatal(err)
	}
	env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		fake = fakeenv.NewPTY(req)
		env.Add(fake)
		return &stuckPTY{PTY: fake, release: release}, nil
	})
	if _, err := m.CreateSession(t.Context(), CreateOptions{ID: "x", EnvironmentID: "fake"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = m.Close(ctx)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Close took %v, past its deadline of 300ms", took)
	}
	if err == nil || !strings.Contains(err.Error(), "had not ended by the deadline") {
		t.Errorf("Close = %v, want an error saying a session's output had not ended", err)
	}
}

// A session destroyed while it starts is recorded by its create, after the
// spawn returns: a create of the same id meanwhile waits for that, so that
// the first create's TERMINATED does not land on the second one's row.
func TestCreateWaitsForTheCreateOfADestroyedStartingSession(t *testing.T) {
	h := newHarness(t, nil)
	spawning, release := make(chan struct{}), make(chan struct{})
	first := true
	h.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		if first {
			first = false
			close(spawning)
			<-release
		}
		p := fakeenv.NewPTY(req)
		h.env.Add(p)
		return p, nil
	})
	created := make(chan error, 1)
	go func() {
		_, err := h.m.CreateSession(context.Background(), CreateOptions{ID: "x", EnvironmentID: "fake"})
		created <- err
	}()
	<-spawning
	destroyed := make(chan error, 1)
	go func() { destroyed <- h.m.DestroySession(context.Background(), "x") }()
	eventually(t, "x to be taken out of the map", func() bool { return !h.m.isLive("x") })
	again := make(chan error, 1)
	go func() {
		_, err := h.m.CreateSession(context.Background(), CreateOptions{ID: "x", EnvironmentID: "fake"})
		again <- err
	}()
	time.Sleep(50 * time.Millisecond) // the second create, if it did not wait, saves its row now
	close(release)
	if err := <-created; err == nil {
		t.Error("the first create succeeded although its session was destroyed while it started")
	}
	if err := <-destroyed; err != nil {
		t.Fatal(err)
	}
	if err := <-again; err != nil {
		t.Fatal(err)
	}
	if err := h.m.writer.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if row := h.store.row(t, "x"); row.Status != StatusActive || row.ExitCode != nil {
		t.Errorf("the second, running session x is recorded as %s (%q), exit code %v", row.Status, row.StatusReason, row.ExitCode)
	}
}
