package core

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/shared"
)

// TestCreateRecordsCommandAndLimits: the record keeps the command, the
// unset_env names and the per-session limits, in memory and in the store;
// the variables' values are not kept.
func TestCreateRecordsCommandAndLimits(t *testing.T) {
	h := newHarness(t, nil)
	rec, err := h.m.CreateSession(t.Context(), CreateOptions{
		ID: "s", EnvironmentID: "fake", Command: []string{"claude", "--model", "a b"},
		Env: map[string]string{"API_KEY": "secret"}, UnsetEnv: []string{"CLAUDECODE"},
		MaxClients: 2, SizePolicy: SizeSmallest, Input: []byte("hello\r"),
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(where string, r SessionRecord) {
		t.Helper()
		if !slices.Equal(r.Command, []string{"claude", "--model", "a b"}) || !slices.Equal(r.UnsetEnv, []string{"CLAUDECODE"}) ||
			r.MaxClients != 2 || r.SizePolicy != SizeSmallest {
			t.Errorf("%s: %+v; want the command, unset_env, max_clients and size_policy", where, r)
		}
	}
	check("CreateSession", rec)
	check("the stored row", h.store.row(t, "s"))
	got, err := h.m.GetSession(t.Context(), "s")
	if err != nil {
		t.Fatal(err)
	}
	check("GetSession", got)
	b, _ := json.Marshal(got)
	var js map[string]any
	_ = json.Unmarshal(b, &js)
	if _, ok := js["command"]; !ok {
		t.Errorf("session JSON %s has no command", b)
	}
	for _, secret := range []string{"secret", "hello"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("session JSON %s holds %q, which must not be stored", b, secret)
		}
	}

	// A session created without them records nothing: the server's.
	rec, _ = h.create(t, "plain")
	if rec.Command != nil || rec.MaxClients != 0 || rec.SizePolicy != "" {
		t.Errorf("plain session: %+v; want no command and the server's limits", rec)
	}
}

// TestCreateLimitsRefused: a negative max_clients and an unknown size
// policy are ErrInvalidArgument, and nothing is started or stored.
func TestCreateLimitsRefused(t *testing.T) {
	h := newHarness(t, nil)
	for name, o := range map[string]CreateOptions{
		"negative max_clients": {ID: "a", EnvironmentID: "fake", MaxClients: -1},
		"unknown size policy":  {ID: "b", EnvironmentID: "fake", SizePolicy: "biggest"},
		"size policy in caps":  {ID: "c", EnvironmentID: "fake", SizePolicy: "LATEST"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := h.m.CreateSession(t.Context(), o); !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("CreateSession: %v, want ErrInvalidArgument", err)
			}
			if _, err := h.store.GetSession(t.Context(), o.ID); !errors.Is(err, ErrSessionNotFound) {
				t.Errorf("a row was stored: %v", err)
			}
		})
	}
	if n := len(h.env.Spawned()); n != 0 {
		t.Errorf("%d spawns, want none", n)
	}
}

// TestPerSessionMaxClients: a session's own limit applies, below or above
// the server's; 0 means the server's.
func TestPerSessionMaxClients(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxClients = 2 })
	for _, tt := range []struct {
		id   string
		max  int
		want int // clients it takes
	}{
		{"one", 1, 1},
		{"default", 0, 2},
		{"three", 3, 3},
	} {
		if _, err := h.m.CreateSession(t.Context(), CreateOptions{ID: tt.id, EnvironmentID: "fake", MaxClients: tt.max}); err != nil {
			t.Fatal(err)
		}
		for range tt.want {
			h.attach(t, tt.id)
		}
		if err := tryAttach(h.m, tt.id); !errors.Is(err, ErrTooManyClients) {
			t.Errorf("%s: attach %d: %v, want ErrTooManyClients", tt.id, tt.want+1, err)
		}
		if err := h.m.attachable(tt.id, AttachWrite); !errors.Is(err, ErrTooManyClients) {
			t.Errorf("%s: attachable: %v, want ErrTooManyClients", tt.id, err)
		}
	}
}

// TestPerSessionSizePolicy: a session's own size policy applies over the
// server's.
func TestPerSessionSizePolicy(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.SizePolicy = SizeLatest })
	for _, tt := range []struct {
		policy SizePolicy
		want   shared.Size
	}{
		{SizeSmallest, shared.Size{Cols: 80, Rows: 30}},
		{"", shared.Size{Cols: 80, Rows: 50}}, // the server's: latest
	} {
		id := "p-" + string(tt.policy)
		if _, err := h.m.CreateSession(t.Context(), CreateOptions{ID: id, EnvironmentID: "fake", SizePolicy: tt.policy}); err != nil {
			t.Fatal(err)
		}
		a, b := h.attach(t, id), h.attach(t, id)
		if err := a.Resize(t.Context(), 100, 30); err != nil {
			t.Fatal(err)
		}
		if err := b.Resize(t.Context(), 80, 50); err != nil {
			t.Fatal(err)
		}
		if got := h.size(t, id); got != tt.want {
			t.Errorf("policy %q: size %v, want %v", tt.policy, got, tt.want)
		}
	}
}

// TestRestartRecordsNewCommand: a restart with a new command makes it the
// session's, in the record and in the store.
func TestRestartRecordsNewCommand(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "s")
	rec, err := h.m.RestartSession(t.Context(), "s", RestartOptions{Command: []string{"top"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rec.Command, []string{"top"}) {
		t.Errorf("record after the restart: command %q, want [top]", rec.Command)
	}
	eventually(t, "the new command stored", func() bool {
		r, err := h.store.GetSession(context.Background(), "s")
		return err == nil && slices.Equal(r.Command, []string{"top"})
	})
}

// TestRestartTakenUpSession: a session taken up from a previous server is
// restarted from its record — command, working directory, unset_env
// names, and its environment's configuration as stored — at the ring's
// end; the client attached reads on across the restart; the kept process
// is killed and released. A second restart reuses the first one's request.
func TestRestartTakenUpSession(t *testing.T) {
	keeper := newFakeKeeper()
	const start = 100
	kept := lines(0, 10)
	keeper.keep("kept", start, kept, nil)
	h := survivingHarness(t, keeper, nil)
	h.store.mu.Lock()
	h.store.envs["fake"] = Environment{ID: "fake", Name: "fake", Type: "FAKE", Config: json.RawMessage(`{"k":1}`), UnsetEnv: []string{"FROM_ENV"}}
	h.store.mu.Unlock()
	h.saveRows(t, SessionRecord{ID: "kept", Status: StatusIdle, Cols: 100, Rows: 30, IdleTimeout: "never",
		Command: []string{"/bin/sh", "-c", "counter"}, WorktreePath: "/work", UnsetEnv: []string{"CLAUDECODE"}})
	if _, err := h.m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	end := int64(start + len(kept))
	a := h.attachFrom(t, "kept", end)
	old := keeper.pty(t, "kept")

	rec, err := h.m.RestartSession(t.Context(), "kept", RestartOptions{Env: map[string]string{"K": "v"}})
	if err != nil {
		t.Fatalf("RestartSession of a session taken up: %v", err)
	}
	if rec.Restarts != 1 || rec.Status != StatusActive {
		t.Errorf("record after the restart: %+v", rec)
	}
	if kills, closes := old.Counts(); kills != 1 || closes != 1 {
		t.Errorf("the kept PTY: %d kills, %d closes; want 1, 1", kills, closes)
	}
	nu := h.env.Last(t)
	req := nu.Req
	if req.SessionID != "kept" || req.EnvironmentID != "fake" || req.EnvironmentType != "FAKE" ||
		!slices.Equal(req.Command, []string{"/bin/sh", "-c", "counter"}) || req.Dir != "/work" ||
		string(req.Config) != `{"k":1}` || !slices.Equal(req.UnsetEnv, []string{"FROM_ENV", "CLAUDECODE"}) ||
		req.Env["K"] != "v" || len(req.Env) != 1 || req.OutputOffset != end ||
		req.Size != (shared.Size{Cols: 100, Rows: 30}) {
		t.Fatalf("the restart's spawn request: %+v", req)
	}
	nu.Output(t, []byte("new"))
	if f, _ := nextFrame(t, a); f.Kind != FrameRestarted || f.Offset != end {
		t.Fatalf("frame %+v, want FrameRestarted at %d", f, end)
	}
	if got := collect(t, a, 3); string(got) != "new" {
		t.Fatalf("output after the restart %q", got)
	}

	// The next restart is a created session's: the last request again.
	if _, err := h.m.RestartSession(t.Context(), "kept", RestartOptions{}); err != nil {
		t.Fatal(err)
	}
	again := h.env.Last(t).Req
	if again.OutputOffset != end+3 || again.Env["K"] != "v" || !slices.Equal(again.Command, req.Command) || string(again.Config) != `{"k":1}` {
		t.Errorf("the second restart's request: %+v", again)
	}
}

// TestRestartTakenUpSessionEnvironmentGone: a session taken up whose
// environment is no longer in the store cannot be restarted, and runs on.
func TestRestartTakenUpSessionEnvironmentGone(t *testing.T) {
	keeper := newFakeKeeper()
	keeper.keep("kept", 0, []byte("x"), nil)
	h := survivingHarness(t, keeper, nil)
	h.saveRows(t, SessionRecord{ID: "kept", Status: StatusIdle, Cols: 80, Rows: 24, IdleTimeout: "never"})
	if _, err := h.m.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	h.store.mu.Lock()
	delete(h.store.envs, "fake")
	h.store.mu.Unlock()
	if _, err := h.m.RestartSession(t.Context(), "kept", RestartOptions{}); !errors.Is(err, ErrEnvironmentNotFound) {
		t.Fatalf("RestartSession: %v, want ErrEnvironmentNotFound", err)
	}
	if kills, _ := keeper.pty(t, "kept").Counts(); kills != 0 {
		t.Errorf("the kept PTY was killed %d times; want untouched", kills)
	}
	if rec, err := h.m.GetSession(t.Context(), "kept"); err != nil || rec.Status != StatusActive {
		t.Errorf("GetSession = %+v, %v; want it running", rec, err)
	}
}
