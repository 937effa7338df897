package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/bytering"
	"github.com/ptyhost/ptyhost/internal/e2etest"
	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// survivingHarness is a harness whose Dispatcher reattached to plugins
// that keep the sessions of keeper.
func survivingHarness(t *testing.T, keeper *fakeKeeper, listErr error) *harness {
	t.Helper()
	return newHarness(t, func(o *Options) {
		o.Plugins = survivingPlugins{Dispatcher: o.Plugins, keeper: keeper, err: listErr}
	})
}

// saveRows writes recs to h's store as a previous server left them.
func (h *harness) saveRows(t *testing.T, recs ...SessionRecord) {
	t.Helper()
	now := time.Now().UTC() // recent: retention must not purge them
	for _, rec := range recs {
		rec.EnvironmentID, rec.CreatedAt, rec.UpdatedAt = "fake", now, now
		if err := h.store.SaveSession(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
}

// lines returns n numbered lines of output.
func lines(from, n int) []byte {
	var b []byte
	for i := range n {
		b = fmt.Appendf(b, "line %06d of the output the plugin kept\r\n", from+i)
	}
	return b
}

func TestReconcileTakesUpKeptSession(t *testing.T) {
	keeper := newFakeKeeper()
	const start = 5000 // the plugin dropped the first 5000 bytes
	kept := lines(0, 100)
	keeper.keep("kept", start, kept, nil)
	h := survivingHarness(t, keeper, nil)
	h.saveRows(t, SessionRecord{ID: "kept", Status: StatusIdle, StatusReason: "stale", ActiveConnections: 2, Cols: 100, Rows: 30, IdleTimeout: "never"})
	events := h.m.Subscribe(t.Context())

	n, err := h.m.Reconcile(t.Context())
	if err != nil || n != 0 {
		t.Fatalf("Reconcile = %d, %v; want 0 lost", n, err)
	}
	if off := keeper.offsets["kept"]; off != 0 {
		t.Errorf("attached from offset %d, want 0 (the oldest byte kept)", off)
	}
	s := h.session(t, "kept")
	s.mu.Lock()
	ringStart, ringEnd, envType := s.ring.Start(), s.ring.End(), s.envType
	s.mu.Unlock()
	// Reconcile returned once the ring had read everything kept.
	if ringStart != start || ringEnd != start+int64(len(kept)) || envType != "FAKE" {
		t.Errorf("ring [%d, %d) of type %q, want [%d, %d) of FAKE", ringStart, ringEnd, envType, start, start+len(kept))
	}
	if e := <-events; e.Type != SessionResumed || e.SessionID != "kept" {
		t.Errorf("event = %+v, want session_resumed kept", e)
	}
	// The terminal takes the recorded size, which the record may have
	// lagged (a server killed right after a resize).
	select {
	case got := <-keeper.pty(t, "kept").Resizes():
		if got != (shared.Size{Cols: 100, Rows: 30}) {
			t.Errorf("the taken-up terminal was resized to %+v, want the record's 100x30", got)
		}
	case <-time.After(5 * time.Second):
		t.Error("the taken-up terminal was not given the record's size")
	}
	rec, err := h.m.GetSession(t.Context(), "kept")
	if err != nil || rec.Status != StatusActive || rec.StatusReason != "" || rec.ActiveConnections != 0 ||
		rec.DetachedAt.IsZero() || rec.Cols != 100 {
		t.Errorf("GetSession = %+v, %v; want ACTIVE, no reason, no client, detached now, 100 cols", rec, err)
	}
	if row := h.store.row(t, "kept"); row.Status != StatusActive || row.StatusReason != "" || row.ActiveConnections != 0 {
		t.Errorf("stored row = %+v; want ACTIVE with no reason and no client", row)
	}

	// A client resuming where the ring begins, or inside it, gets exactly
	// the bytes from there, then the live output.
	fromStart := h.attachFrom(t, "kept", start)
	mid := int64(start + 1234)
	fromMid := h.attachFrom(t, "kept", mid)
	// One asking for bytes the plugin no longer had is reset to a line
	// start, and gets the replay from there.
	old := h.attachFrom(t, "kept", 10)
	more := []byte("live after the restart\r\n")
	keeper.pty(t, "kept").Output(t, more)

	want := append(bytes.Clone(kept), more...)
	if got, other := frames(t, fromStart, len(want)); !bytes.Equal(got, want) || len(other) != 0 {
		t.Errorf("from %d: got %d bytes and frames %+v, want the %d bytes kept and live exactly", start, len(got), other, len(want))
	}
	if got, other := frames(t, fromMid, len(want)-1234); !bytes.Equal(got, want[1234:]) || len(other) != 0 {
		t.Errorf("from %d: got %q... and frames %+v", mid, got[:min(len(got), 40)], other)
	}
	at := old.Hello().Offset
	if at <= start || at >= start+int64(len(kept)) || bytes.LastIndexByte(kept[:at-start], '\n') != int(at-start)-1 {
		t.Fatalf("an attach from a dropped offset resumes at %d, want a line start after %d", at, start)
	}
	got, other := frames(t, old, len(want)-int(at-start))
	if !bytes.Equal(got, want[at-start:]) || len(other) == 0 || other[0].Kind != FrameReset || other[0].Offset != at {
		t.Errorf("from a dropped offset: frames %+v and %d bytes, want a reset to %d, then the output from there", other, len(got), at)
	}

	// The session runs as a created one does: input reaches its PTY.
	if _, err := fromStart.Write([]byte("ls\r")); err != nil {
		t.Fatal(err)
	}
	if in := <-keeper.pty(t, "kept").Input(); string(in) != "ls\r" {
		t.Errorf("input = %q", in)
	}
}

func TestReconcileRecordsTheExitOfAKeptSession(t *testing.T) {
	keeper := newFakeKeeper()
	keeper.keep("ended", 0, []byte("bye\r\n"), &ExitStatus{Code: 137, Signal: "SIGKILL"})
	h := survivingHarness(t, keeper, nil)
	h.saveRows(t, SessionRecord{ID: "ended", Status: StatusActive, ActiveConnections: 1})

	if n, err := h.m.Reconcile(t.Context()); err != nil || n != 0 {
		t.Fatalf("Reconcile = %d, %v; want 0 lost", n, err)
	}
	eventually(t, "the exit to be recorded", func() bool {
		if err := h.m.writer.flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		return h.store.row(t, "ended").Status == StatusTerminated
	})
	row := h.store.row(t, "ended")
	if row.ExitCode == nil || *row.ExitCode != 137 || row.ExitSignal != "SIGKILL" || row.StatusReason != "" {
		t.Errorf("row = %+v; want TERMINATED, exit 137 SIGKILL", row)
	}
	// It lingers with what the plugin kept, as an exited session does.
	a := h.attach(t, "ended")
	f, out := nextFrame(t, a)
	if string(out) != "bye\r\n" || f.Kind != FrameExit || f.Exit.Code != 137 || f.Exit.Signal != "SIGKILL" {
		t.Errorf("attach: %q then %+v; want the output kept, then exit 137 SIGKILL", out, f)
	}
}

func TestReconcileLostAndStraySessions(t *testing.T) {
	keeper := newFakeKeeper()
	keeper.keep("kept", 0, []byte("$ "), nil)
	keeper.keep("refused", 0, []byte("$ "), nil)
	keeper.failWith["refused"] = fmt.Errorf("stream broke: %w", shared.ErrPluginExited)
	keeper.keep("flaky", 0, []byte("$ "), nil)
	keeper.failOnce["flaky"] = fmt.Errorf("stream broke: %w", shared.ErrPluginExited)
	keeper.keep("stray", 0, []byte("nobody knows me"), nil)
	keeper.keep("was-ended", 0, []byte("$ "), nil)
	h := survivingHarness(t, keeper, errors.New("the DOCKER plugin did not answer"))
	h.saveRows(t,
		SessionRecord{ID: "kept", Status: StatusStarting},
		SessionRecord{ID: "refused", Status: StatusActive, ActiveConnections: 1},
		SessionRecord{ID: "flaky", Status: StatusActive},
		SessionRecord{ID: "unkept", Status: StatusIdle},
		SessionRecord{ID: "was-ended", Status: StatusTerminated},
	)

	n, err := h.m.Reconcile(t.Context())
	if err != nil || n != 3 {
		t.Fatalf("Reconcile = %d, %v; want 3 lost (refused, flaky, unkept)", n, err)
	}
	for id, want := range map[string]Status{
		"kept": StatusActive, "refused": StatusError, "flaky": StatusError, "unkept": StatusError, "was-ended": StatusTerminated,
	} {
		row := h.store.row(t, id)
		if row.Status != want {
			t.Errorf("%s: status %s, want %s", id, row.Status, want)
		}
		if want == StatusError && (row.StatusReason != ReasonServerLost || row.ActiveConnections != 0) {
			t.Errorf("%s: %+v, want reason %q and no client", id, row, ReasonServerLost)
		}
	}
	if err := tryAttach(h.m, "refused"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("a session whose plugin refused the attach is live: %v", err)
	}
	// The sessions kept that no live record claims, or that could not be
	// taken up, were attached past their output, killed and cleaned up.
	for _, id := range []string{"stray", "was-ended", "flaky"} {
		p := keeper.pty(t, id)
		if kills, closes := p.Counts(); kills != 1 || closes != 1 {
			t.Errorf("%s: kills=%d closes=%d, want 1 and 1", id, kills, closes)
		}
		if off := keeper.offsets[id]; off != keeper.kept[id].EndOffset {
			t.Errorf("%s: attached at %d, want past the output kept (%d)", id, off, keeper.kept[id].EndOffset)
		}
		if err := tryAttach(h.m, id); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("%s is live: %v", id, err)
		}
	}
	if kills, _ := keeper.pty(t, "kept").Counts(); kills != 0 {
		t.Error("the session taken up was killed")
	}
}

func TestReconcileLeavesLiveSessionsAlone(t *testing.T) {
	keeper := newFakeKeeper()
	keeper.keep("mine", 0, nil, nil)
	h := survivingHarness(t, keeper, nil)
	h.create(t, "mine")
	if err := h.m.writer.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, err := h.m.Reconcile(t.Context()); err != nil || n != 0 {
		t.Fatalf("Reconcile = %d, %v", n, err)
	}
	// Neither taken up (over the running one) nor hung up.
	keeper.mu.Lock()
	_, attached := keeper.attached["mine"]
	keeper.mu.Unlock()
	if attached {
		t.Error("the keeper was asked for a session this manager runs")
	}
	if kills, _ := h.env.Last(t).Counts(); kills != 0 {
		t.Error("the running session was killed")
	}
}

func TestSpawnAsksThePluginToKeepTheScrollback(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = 64 << 10 })
	_, p := h.create(t, "s")
	if p.Req.ScrollbackBytes != 64<<10 || p.Req.OutputOffset != 0 {
		t.Errorf("spawn request: scrollback %d, offset %d; want 64 KiB from 0", p.Req.ScrollbackBytes, p.Req.OutputOffset)
	}
}

// detachHarness is a harness whose spawns return PTYs that can be detached
// (a plugin process's), but for the session "plain" (an in-process one).
func detachHarness(t *testing.T) (*harness, map[string]*keptPTY) {
	t.Helper()
	h := newHarness(t, nil)
	ptys := map[string]*keptPTY{}
	h.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		if req.SessionID == "plain" {
			p := fakeenv.NewPTY(req)
			h.env.Add(p)
			return p, nil
		}
		p := newKeptPTY(req, nil)
		h.env.Add(p.PTY)
		ptys[req.SessionID] = p // spawns run one at a time here
		return p, nil
	})
	return h, ptys
}

func TestDetachLeavesSessionsRunning(t *testing.T) {
	h, ptys := detachHarness(t)
	h.create(t, "busy")
	_, plain := h.create(t, "plain")
	h.create(t, "idle")
	h.create(t, "ended")
	busy := h.attach(t, "busy")
	onPlain := h.attach(t, "plain")
	h.attach(t, "idle").Close() // IDLE now
	ptys["busy"].Output(t, []byte("working\r\n"))
	if got := collect(t, busy, 9); string(got) != "working\r\n" {
		t.Fatalf("output %q", got)
	}
	ptys["ended"].End(shared.ExitStatus{Code: 0})
	eventually(t, "ended to exit", func() bool { return h.session(t, "ended").hasExited() })
	if err := h.m.writer.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	events := h.m.Subscribe(t.Context())

	detached := make(chan error, 1)
	go func() { detached <- h.m.Detach(context.Background()) }()

	// The client of a session that goes on is told to reconnect, at once.
	f, _ := nextFrame(t, busy)
	if f.Kind != FrameClose || f.CloseCode != 1012 || f.CloseReason != CloseReasonRestart {
		t.Errorf("busy's client: %+v, want close 1012 %q", f, CloseReasonRestart)
	}
	busy.Close()
	// A session that cannot outlive the server is hung up as Close does.
	f, _ = nextFrame(t, onPlain)
	if f.Kind != FrameExit {
		t.Errorf("plain's client: %+v, want its exit", f)
	}
	if f, _ = nextFrame(t, onPlain); f.Kind != FrameClose || f.CloseCode != CloseGoingAway {
		t.Errorf("plain's client: %+v, want close 1001", f)
	}
	onPlain.Close()
	if err := <-detached; err != nil {
		t.Fatalf("Detach: %v", err)
	}

	for id, want := range map[string]Status{"busy": StatusActive, "idle": StatusIdle} {
		p := ptys[id]
		// Counts are the plugin's: Close after Detach does not reach it.
		if kills, closes := p.Counts(); p.Detaches() != 1 || kills != 0 || closes != 0 {
			t.Errorf("%s: detaches=%d kills=%d closes=%d, want detached once, neither killed nor closed", id, p.Detaches(), kills, closes)
		}
		row := h.store.row(t, id)
		if row.Status != want || row.ActiveConnections != 0 || row.ExitCode != nil || row.StatusReason != "" {
			t.Errorf("%s: row %+v, want %s with no client, no exit and no reason", id, row, want)
		}
	}
	if kills, closes := plain.Counts(); kills != 1 || closes != 1 {
		t.Errorf("plain: kills=%d closes=%d, want 1 and 1", kills, closes)
	}
	if row := h.store.row(t, "plain"); row.Status != StatusTerminated || row.StatusReason != ReasonServerShutdown {
		t.Errorf("plain: row %+v, want TERMINATED %s", row, ReasonServerShutdown)
	}
	if row := h.store.row(t, "ended"); row.Status != StatusTerminated || row.ExitCode == nil || *row.ExitCode != 0 {
		t.Errorf("ended: row %+v, want TERMINATED with exit 0, as it was", row)
	}
	if p := ptys["ended"]; p.Detaches() != 0 {
		t.Error("the exited session's PTY was detached")
	}
	for e := range events { // closed by Detach
		if e.SessionID != "plain" {
			t.Errorf("event %+v about a session left running", e)
		}
	}

	// Stopped: nothing new, and Close is a no-op.
	if _, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "new", EnvironmentID: "fake"}); !errors.Is(err, ErrClosed) {
		t.Errorf("CreateSession after Detach: %v, want ErrClosed", err)
	}
	if _, err := h.m.Attach(t.Context(), "busy"); !errors.Is(err, ErrClosed) {
		t.Errorf("Attach after Detach: %v, want ErrClosed", err)
	}
	if err := h.m.Close(t.Context()); err != nil {
		t.Errorf("Close after Detach: %v", err)
	}
	if err := h.m.Detach(t.Context()); err != nil {
		t.Errorf("Detach again: %v", err)
	}
	if kills, closes := ptys["busy"].Counts(); kills != 0 || closes != 0 {
		t.Errorf("Close after Detach ended busy: kills=%d closes=%d", kills, closes)
	}
	if row := h.store.row(t, "busy"); row.Status != StatusActive {
		t.Errorf("busy after Close: %s, want ACTIVE", row.Status)
	}
}

func TestDetachAfterCloseDoesNothing(t *testing.T) {
	h, ptys := detachHarness(t)
	h.create(t, "s")
	if err := h.m.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Detach(t.Context()); err != nil {
		t.Errorf("Detach after Close: %v", err)
	}
	if p := ptys["s"]; p.Detaches() != 0 {
		t.Error("Detach after Close detached a PTY")
	}
	if row := h.store.row(t, "s"); row.Status != StatusTerminated || row.StatusReason != ReasonServerShutdown {
		t.Errorf("row %+v, want Close's TERMINATED %s", row, ReasonServerShutdown)
	}
}

func TestDetachStopsAPumpWaitingForAClient(t *testing.T) {
	h, ptys := detachHarness(t)
	h.create(t, "flood")
	a := h.attach(t, "flood") // never reads: the pump stops at the high-water mark
	p := ptys["flood"]
	written := make(chan error, 1)
	go func() {
		_, err := p.WriteOutput(make([]byte, DefaultScrollbackBytes))
		written <- err
	}()
	s := h.session(t, "flood")
	eventually(t, "the pump to wait for the client", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.pumpWaiting
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.m.Detach(ctx) }()
	// Read nothing before the detach: reading would let the pump on.
	eventually(t, "the session to be left", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.state == stateDestroyed
	})
	if f, _ := nextFrame(t, a); f.Kind != FrameClose || f.CloseCode != CloseRestart {
		t.Errorf("frame %+v, want close 1012", f)
	}
	a.Close()
	if err := <-done; err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if err := <-written; err == nil {
		t.Error("the flood was all read after the detach")
	}
	if p.Detaches() != 1 {
		t.Errorf("detaches = %d, want 1", p.Detaches())
	}
}

func TestRingBeginsAtAnOffset(t *testing.T) {
	r := newRing(bytering.MinSize)
	r.beginAt(1000)
	buf := make([]byte, 16)
	if _, ok := r.Read(buf, 999); ok {
		t.Error("a byte before the ring's beginning reads")
	}
	if n, ok := r.Read(buf, 1000); n != 0 || !ok || !r.Holds(1000) {
		t.Errorf("read at the beginning = %d, %v; want nothing yet", n, ok)
	}
	r.commit([]byte("hello"), nil, defaultModes)
	if n, ok := r.Read(buf, 1001); !ok || string(buf[:n]) != "ello" {
		t.Errorf("read at 1001 = %q, %v", buf[:n], ok)
	}
	if p := r.replayPoint(); p.off != r.End() {
		t.Errorf("replay point %d without a safe point, want the end %d", p.off, r.End())
	}
}

// TestReconcileRefusesABadOffset: a kept session whose plugin answers an
// offset the scrollback cannot begin at (negative, or near the int64
// limit) is not taken up: it is recorded lost and hung up, and the server
// goes on.
func TestReconcileRefusesABadOffset(t *testing.T) {
	keeper := newFakeKeeper()
	for id, off := range map[string]int64{"negative": -1000, "huge": math.MaxInt64 - 10} {
		keeper.keep(id, 0, []byte("$ "), nil)
		keeper.answer[id] = off
	}
	h := survivingHarness(t, keeper, nil)
	h.saveRows(t, SessionRecord{ID: "negative", Status: StatusActive}, SessionRecord{ID: "huge", Status: StatusActive})

	if n, err := h.m.Reconcile(t.Context()); err != nil || n != 2 {
		t.Fatalf("Reconcile = %d, %v; want 2 lost", n, err)
	}
	for _, id := range []string{"negative", "huge"} {
		if row := h.store.row(t, id); row.Status != StatusError || row.StatusReason != ReasonServerLost {
			t.Errorf("%s: %+v, want ERROR %s", id, row, ReasonServerLost)
		}
		if err := tryAttach(h.m, id); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("%s is live: %v", id, err)
		}
		if kills, closes := keeper.pty(t, id).Counts(); kills != 1 || closes != 1 {
			t.Errorf("%s: kills=%d closes=%d, want it hung up", id, kills, closes)
		}
	}
}

// listedSurvivors is a Dispatcher that reattached to plugin processes
// whose kept sessions are list, as pluginhost lists them.
type listedSurvivors struct {
	Dispatcher
	list []Survivor
}

func (s listedSurvivors) Survivors(context.Context) ([]Survivor, error) { return s.list, nil }

// TestReconcileTakesUpOnlyTheSessionsOfItsType: a plugin cannot take up
// another plugin's session by listing its id. Of two plugins that both
// list a session, the one of its environment's type takes it up, the
// other's is hung up, whichever is listed first; a session listed only by
// a plugin of another type, or listed as foreign (a type its plugin does
// not serve), is recorded lost, and what that plugin kept is hung up.
func TestReconcileTakesUpOnlyTheSessionsOfItsType(t *testing.T) {
	legit, evil := newFakeKeeper(), newFakeKeeper()
	legit.keep("victim", 0, []byte("legit$ "), nil)
	for _, id := range []string{"victim", "other-type", "foreign"} {
		evil.keep(id, 0, []byte("evil$ "), nil)
	}
	// A type is its plugin's as spelled: another plugin may serve "fake".
	evil.kept["victim"].EnvironmentType = "fake"
	evil.kept["other-type"].EnvironmentType = "EVIL"
	list := []Survivor{
		{KeptSession: evil.kept["victim"].KeptSession, Keeper: evil},
		{KeptSession: legit.kept["victim"].KeptSession, Keeper: legit},
		{KeptSession: evil.kept["other-type"].KeptSession, Keeper: evil},
		{KeptSession: evil.kept["foreign"].KeptSession, Keeper: evil, Foreign: true},
	}
	h := newHarness(t, func(o *Options) { o.Plugins = listedSurvivors{Dispatcher: o.Plugins, list: list} })
	h.saveRows(t,
		SessionRecord{ID: "victim", Status: StatusActive},
		SessionRecord{ID: "other-type", Status: StatusActive},
		SessionRecord{ID: "foreign", Status: StatusActive},
	)

	if n, err := h.m.Reconcile(t.Context()); err != nil || n != 2 {
		t.Fatalf("Reconcile = %d, %v; want 2 lost (other-type, foreign)", n, err)
	}
	a := h.attach(t, "victim")
	if out, _ := frames(t, a, len("legit$ ")); string(out) != "legit$ " {
		t.Errorf("the session taken up shows %q, want its own plugin's %q", out, "legit$ ")
	}
	if kills, _ := legit.pty(t, "victim").Counts(); kills != 0 {
		t.Error("the session taken up was killed")
	}
	for _, id := range []string{"victim", "other-type", "foreign"} {
		if kills, closes := evil.pty(t, id).Counts(); kills != 1 || closes != 1 {
			t.Errorf("the other plugin's %s: kills=%d closes=%d, want it hung up", id, kills, closes)
		}
	}
	for _, id := range []string{"other-type", "foreign"} {
		if row := h.store.row(t, id); row.Status != StatusError || row.StatusReason != ReasonServerLost {
			t.Errorf("%s: %+v, want ERROR %s", id, row, ReasonServerLost)
		}
	}
}

// The plugin is told to forget an exited session only once its exit is in
// the store. While the store is down it keeps the session, so that a
// server that stops meanwhile leaves the exit to the next one (which
// records it: TestReconcileRecordsTheExitOfAKeptSession) instead of losing
// it to server_lost.
func TestExitForgottenOnlyOnceStored(t *testing.T) {
	t.Run("stored", func(t *testing.T) {
		h, ptys := detachHarness(t)
		h.create(t, "s")
		ptys["s"].End(shared.ExitStatus{Code: 7})
		eventually(t, "the plugin told to forget the session", func() bool {
			_, closes := ptys["s"].Counts()
			return closes == 1
		})
		if row := h.store.row(t, "s"); row.ExitCode == nil || *row.ExitCode != 7 {
			t.Errorf("row %+v when the plugin was told, want the exit stored", row)
		}
	})
	t.Run("stored after retries", func(t *testing.T) {
		h, ptys := detachHarness(t)
		h.create(t, "s")
		if err := h.m.writer.flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		h.store.failWrites(3)
		ptys["s"].End(shared.ExitStatus{Code: 7})
		a := h.attach(t, "s") // an update merged into the failed one
		a.Close()
		eventually(t, "the plugin told to forget the session", func() bool {
			_, closes := ptys["s"].Counts()
			return closes == 1
		})
		if row := h.store.row(t, "s"); row.ExitCode == nil || *row.ExitCode != 7 {
			t.Errorf("row %+v when the plugin was told, want the exit stored", row)
		}
	})
	t.Run("a slow cleanup holds up no other write", func(t *testing.T) {
		h, ptys := detachHarness(t)
		h.create(t, "slow")
		h.create(t, "other")
		unblock := make(chan struct{})
		defer close(unblock)
		ptys["slow"].closeGate = unblock // its plugin's cleanup takes until the test ends
		ptys["slow"].End(shared.ExitStatus{Code: 1})
		eventually(t, "slow's cleanup to begin", func() bool { return ptys["slow"].closing.Load() })
		ptys["other"].End(shared.ExitStatus{Code: 5})
		eventually(t, "other's exit stored and its plugin told", func() bool {
			_, closes := ptys["other"].Counts()
			row := h.store.row(t, "other")
			return closes == 1 && row.ExitCode != nil && *row.ExitCode == 5
		})
	})
	for _, stop := range []string{"Close", "Detach"} {
		t.Run("store down, a lingered-out session, then "+stop, func(t *testing.T) {
			h, ptys := detachHarness(t)
			h.m.opts.Linger = time.Millisecond
			h.create(t, "s")
			if err := h.m.writer.flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			h.store.failWrites(1 << 30)
			ptys["s"].End(shared.ExitStatus{Code: 7})
			eventually(t, "the session to linger out", func() bool {
				h.m.mu.Lock()
				defer h.m.mu.Unlock()
				return h.m.sessions["s"] == nil
			})
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			h.closeFailed = true
			detaches := 0
			if stop == "Close" {
				_ = h.m.Close(ctx)
			} else {
				_ = h.m.Detach(ctx)
				detaches = 1 // the plugin keeps it for the next server
			}
			if ptys["s"].Detaches() != detaches {
				t.Errorf("detaches = %d, want %d", ptys["s"].Detaches(), detaches)
			}
			if _, closes := ptys["s"].Counts(); closes != 1-detaches {
				t.Errorf("plugin cleanups = %d, want %d", closes, 1-detaches)
			}
		})
	}
	t.Run("store down, then the server stops", func(t *testing.T) {
		h, ptys := detachHarness(t)
		h.create(t, "s")
		if err := h.m.writer.flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		h.store.failWrites(1 << 30)
		ptys["s"].End(shared.ExitStatus{Code: 7})
		eventually(t, "the session to exit", func() bool { return h.session(t, "s").hasExited() })
		if err := h.m.writer.flush(t.Context()); err == nil {
			t.Fatal("the flush succeeded with the store down")
		}
		if _, closes := ptys["s"].Counts(); closes != 0 {
			t.Fatalf("the plugin was told to forget the session before its exit was stored")
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		h.closeFailed = true
		_ = h.m.Detach(ctx) // its last flush fails too
		if _, closes := ptys["s"].Counts(); closes != 0 || ptys["s"].Detaches() != 1 {
			t.Errorf("after Detach: closes=%d detaches=%d, want the session detached, kept by the plugin", closes, ptys["s"].Detaches())
		}
	})
}

// A session created again under the id of one that exited reaches the
// plugin only after the plugin was told to forget the old one, which the
// plugin knows by the same id: here the old session's release waits for
// its end to be stored, and the new session's row replaces that end.
func TestRecreatedSessionSpawnsAfterTheOldRelease(t *testing.T) {
	h, ptys := detachHarness(t)
	h.m.opts.Linger = time.Millisecond
	h.create(t, "s")
	if err := h.m.writer.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	old := ptys["s"]
	gate := make(chan struct{})
	old.closeGate = gate // the plugin's cleanup of the old session is slow
	h.store.failWrites(1 << 30)
	old.End(shared.ExitStatus{Code: 7})
	eventually(t, "the session to linger out", func() bool {
		h.m.mu.Lock()
		defer h.m.mu.Unlock()
		return h.m.sessions["s"] == nil
	})
	h.store.failWrites(0)
	oldClosesAtSpawn := -1
	h.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		_, oldClosesAtSpawn = old.Counts()
		p := newKeptPTY(req, nil)
		h.env.Add(p.PTY)
		ptys[req.SessionID] = p
		return p, nil
	})
	time.AfterFunc(100*time.Millisecond, func() { close(gate) })
	if _, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "s", EnvironmentID: "fake"}); err != nil {
		t.Fatal(err)
	}
	if oldClosesAtSpawn != 1 {
		t.Errorf("the new session was spawned before the old one's cleanup reached the plugin (old cleanups then: %d)", oldClosesAtSpawn)
	}
}

// A server stopped to leave its sessions running before a session's
// initial input was typed cannot hand the input on (it is never stored):
// it says so, naming the session, rather than losing it silently.
func TestDetachBeforeTheInputSaysItIsLost(t *testing.T) {
	var logs e2etest.Buffer
	h := newHarness(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	var kept *keptPTY
	h.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		kept = newKeptPTY(req, nil)
		h.env.Add(kept.PTY)
		return kept, nil
	})
	// The program writes nothing: the input would go 3 s after the start.
	if _, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "s1", EnvironmentID: "fake", Input: []byte("first\n")}); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Detach(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case in := <-kept.Input():
		t.Errorf("input %q typed although the server stopped first", in)
	default:
	}
	if out := logs.String(); !strings.Contains(out, "initial input was typed; it is not typed") || !strings.Contains(out, "s1") {
		t.Errorf("log %q, want the lost input's warning for s1", out)
	}
}

// A plugin's kept output can begin inside an escape sequence or a long
// string (an image), whose state a new server cannot know: a new client's
// replay must not begin before the first byte that ends one, or the rest
// of the sequence is printed as text.
func TestReconcileKeptOutputBeginningInsideASequence(t *testing.T) {
	for _, tc := range []struct {
		name, kept, after string
	}{
		// The tail of a DCS string (sixel) longer than the safe points'
		// spacing, then its terminator.
		{"dcs", strings.Repeat("#0~~", 20000) + "\x1b\\", "after\r\n"},
		// The end of a colour's parameters, then text without a newline.
		{"csi", "5;196m" + strings.Repeat("B", 40000), "\x1b[0m\r\nafter\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keeper := newFakeKeeper()
			const start = 5000
			kept := []byte(tc.kept + tc.after)
			keeper.keep("kept", start, kept, nil)
			h := survivingHarness(t, keeper, nil)
			h.saveRows(t, SessionRecord{ID: "kept", Status: StatusActive, Cols: 80, Rows: 24, IdleTimeout: "never"})
			if _, err := h.m.Reconcile(t.Context()); err != nil {
				t.Fatal(err)
			}
			a := h.attach(t, "kept")
			more := []byte("live\r\n")
			keeper.pty(t, "kept").Output(t, more)
			at := a.Hello().Offset
			if at < start+int64(len(tc.kept)) {
				t.Fatalf("the replay begins at %d, before %d, where the first sequence kept from %d is known to end", at, start+len(tc.kept), start)
			}
			want := append(kept[at-start:], more...)
			if got, other := frames(t, a, len(want)); !bytes.Equal(got, want) {
				t.Errorf("replay %q, frames %+v; want %q", got, other, want)
			}
		})
	}
}

// listDownStore and queryDownStore are stores whose session list, or
// session queries, fail.
type listDownStore struct{ *memStore }

func (listDownStore) ListSessions(context.Context, ...Status) ([]SessionRecord, error) {
	return nil, errStoreDown
}

type queryDownStore struct{ *memStore }

func (queryDownStore) QuerySessions(context.Context, SessionQuery) ([]SessionRecord, error) {
	return nil, errStoreDown
}

// A store that fails makes Reconcile's error ErrStoreUnavailable, as the
// other methods' are, whether it fails the list of live sessions or the
// check that it knows the kept ones: an embedder tells an outage at
// start-up by it.
func TestReconcileStoreDownIsUnavailable(t *testing.T) {
	for name, down := range map[string]func(*memStore) Store{
		"list":  func(s *memStore) Store { return listDownStore{s} },
		"query": func(s *memStore) Store { return queryDownStore{s} },
	} {
		t.Run(name, func(t *testing.T) {
			keeper := newFakeKeeper()
			keeper.keep("kept", 0, []byte("x"), nil)
			h := newHarness(t, func(o *Options) {
				o.Store = down(o.Store.(*memStore))
				o.Plugins = survivingPlugins{Dispatcher: o.Plugins, keeper: keeper}
			})
			if _, err := h.m.Reconcile(t.Context()); !errors.Is(err, ErrStoreUnavailable) || !errors.Is(err, errStoreDown) {
				t.Errorf("Reconcile = %v, want ErrStoreUnavailable wrapping the store's error", err)
			}
		})
	}
}
