package core

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// staticEnv spawns sessions that print out and exit 0 at once.
type staticEnv struct{ out []byte }

func (e staticEnv) Info(context.Context) (shared.Info, error) {
	return shared.Info{Name: "static", Types: []string{"FAKE"}}, nil
}

func (e staticEnv) ValidateConfig(context.Context, string, []byte) error { return nil }

func (e staticEnv) Spawn(context.Context, shared.SpawnRequest) (shared.PTY, error) {
	return &staticPTY{r: bytes.NewReader(e.out)}, nil
}

type staticPTY struct{ r *bytes.Reader }

func (p *staticPTY) Read(b []byte) (int, error)                      { return p.r.Read(b) }
func (p *staticPTY) Write(b []byte) (int, error)                     { return len(b), nil }
func (p *staticPTY) Resize(context.Context, shared.Size) error       { return nil }
func (p *staticPTY) Wait(context.Context) (shared.ExitStatus, error) { return shared.ExitStatus{}, nil }
func (p *staticPTY) Kill(context.Context) error                      { return nil }
func (p *staticPTY) Close() error                                    { return nil }

var _ io.Reader = (*staticPTY)(nil)

// exitedCount returns how many of m's sessions have exited and been
// accounted for as lingering.
func exitedCount(m *Manager) int {
	m.mu.Lock()
	all := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	n := 0
	for _, s := range all {
		s.mu.Lock()
		if s.state == stateExited && s.lingerTimer != nil {
			n++
		}
		s.mu.Unlock()
	}
	return n
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// 5,000 short sessions, each printing 24 KiB and exiting, all lingering
// (the default 5 minutes): their scrollback is released down to the exit
// replay and then to the lingering budget, so the heap stays bounded. With
// every ring allocated whole and kept through the linger, it took 1.25 GB.
func TestShortSessionsKeepMemoryBounded(t *testing.T) {
	const sessions, budget = 5000, 8 << 20
	line := []byte("\x1b[32mPASS\x1b[0m ok  github.com/example/pkg/sub\t0.012s\r\n")
	out := bytes.Repeat(line, (24<<10)/len(line))
	h := &harness{store: newMemStore()}
	h.store.envs["fake"] = Environment{ID: "fake", Name: "fake", Type: "FAKE"}
	m, err := New(Options{
		Store: h.store, Plugins: fakePlugins{"FAKE": staticEnv{out: out}},
		IdleTimeout: NoIdleTimeout, LingerScrollbackBytes: budget,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })

	before := heapInUse()
	for i := range sessions {
		if _, err := m.CreateSession(t.Context(), CreateOptions{ID: fmt.Sprintf("s%d", i), EnvironmentID: "fake"}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for exitedCount(m) < sessions {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sessions exited", exitedCount(m), sessions)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A session counts as exited once it lingers, before its pump has
	// accounted for its scrollback (keepExited, behind the other
	// sessions' turns under load): wait for every pump to end.
	m.mu.Lock()
	all := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		all = append(all, s)
	}
	m.mu.Unlock()
	for _, s := range all {
		select {
		case <-s.pumpDone:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("session %s's pump did not end", s.id)
		}
	}
	after := heapInUse()
	grown := int64(after) - int64(before)
	t.Logf("heap grew by %.1f MiB for %d exited sessions (%.1f KiB each); lingering scrollback %.1f MiB",
		float64(grown)/(1<<20), sessions, float64(grown)/sessions/1024, float64(m.lingeringScrollback())/(1<<20))
	if kept := m.lingeringScrollback(); kept > budget {
		t.Errorf("exited sessions keep %d bytes of scrollback, over the budget of %d", kept, budget)
	}
	if limit := int64(48 << 20); grown > limit {
		t.Errorf("heap grew by %d MiB, want under %d MiB", grown>>20, limit>>20)
	}
	// Each session is still attachable and ends with its exit.
	for _, id := range []string{"s0", fmt.Sprintf("s%d", sessions-1)} {
		a, err := m.Attach(t.Context(), id)
		if err != nil {
			t.Fatalf("attach %s: %v", id, err)
		}
		f, _ := nextFrame(t, a)
		if f.Kind != FrameExit {
			t.Errorf("attach %s: frame %+v, want the exit", id, f)
		}
		a.Close()
	}
}

// A session that has printed nothing holds little: no scrollback yet, and
// a small read buffer.
func TestIdleSessionsHoldLittle(t *testing.T) {
	const sessions = 1000
	h := newHarness(t, nil)
	before := heapInUse()
	for i := range sessions {
		h.create(t, fmt.Sprintf("idle%d", i))
	}
	grown := int64(heapInUse()) - int64(before)
	t.Logf("heap grew by %.1f KiB per idle session", float64(grown)/sessions/1024)
	if per := grown / sessions; per > 32<<10 {
		t.Errorf("an idle session holds %d KiB, want under 32 KiB", per>>10)
	}
	h.m.mu.Lock()
	s := h.m.sessions["idle0"]
	h.m.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.ring.Footprint(); f != 0 {
		t.Errorf("an idle session's ring holds %d bytes", f)
	}
}
