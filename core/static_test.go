package core

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// stubEnv is the smallest Environment, for StaticEnvironments.
type stubEnv struct{ shared.Environment }

func TestStaticEnvironments(t *testing.T) {
	a, b := &stubEnv{}, &stubEnv{}
	p := StaticEnvironments(map[string]shared.Environment{"B": b, "A": a})
	if got := p.Types(); !slices.Equal(got, []string{"A", "B"}) {
		t.Errorf("Types() = %q", got)
	}
	if env, err := p.Environment("B"); err != nil || env != b {
		t.Errorf("Environment(B) = %v, %v", env, err)
	}
	if _, err := p.Environment("C"); !errors.Is(err, ErrNoPlugin) {
		t.Errorf("Environment(C): %v, want ErrNoPlugin", err)
	}
	if list := p.List(); len(list) != 2 || list[0].Name != "A" || list[0].State != PluginStatic ||
		!slices.Equal(list[0].Types, []string{"A"}) || list[0].Capabilities == nil {
		t.Errorf("List() = %+v", list)
	}
	if _, err := p.Restart(t.Context(), "A"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Restart of a static plugin: %v, want ErrInvalidArgument", err)
	}
	if _, err := p.Restart(t.Context(), "Z"); !errors.Is(err, ErrPluginNotFound) {
		t.Errorf("Restart of an unknown plugin: %v, want ErrPluginNotFound", err)
	}
}

// Through a manager: the plugin endpoints' methods use the controller.
func TestStaticEnvironmentsAsController(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Plugins = StaticEnvironments{"FAKE": &fakeenv.Env{}} })
	if list := h.m.ListPlugins(); len(list) != 1 || list[0].Name != "FAKE" || list[0].State != PluginStatic {
		t.Errorf("ListPlugins() = %+v", list)
	}
	if _, err := h.m.RestartPlugin(t.Context(), "FAKE"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("RestartPlugin(FAKE): %v, want ErrInvalidArgument", err)
	}
}

// An in-process environment whose Spawn returns neither a PTY nor an
// error fails the create, and a restart in place, as the SDK's server
// fails a plugin's: the session is ERROR and the server goes on. It was
// run as a session with no PTY, which panicked the server at its hang-up.
func TestSpawnWithNoPTYAndNoError(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Plugins = StaticEnvironments{"FAKE": o.Plugins.(fakePlugins)["FAKE"]} })
	h.create(t, "restarted")
	h.env.SetSpawn(func(context.Context, shared.SpawnRequest) (shared.PTY, error) { return nil, nil })
	_, err := h.m.CreateSession(t.Context(), CreateOptions{ID: "created", EnvironmentID: "fake"})
	if !errors.Is(err, ErrSpawn) || !errors.Is(err, shared.ErrPluginProtocol) {
		t.Errorf("CreateSession: %v, want ErrSpawn and shared.ErrPluginProtocol", err)
	}
	eventually(t, "the session recorded ERROR", func() bool {
		rec, err := h.store.GetSession(t.Context(), "created")
		return err == nil && rec.Status == StatusError
	})
	// A failed restart ends the session and says why in its message.
	if _, err := h.m.RestartSession(t.Context(), "restarted", RestartOptions{}); !errors.Is(err, ErrSpawn) ||
		!strings.Contains(err.Error(), "no PTY and no error") {
		t.Errorf("RestartSession: %v, want ErrSpawn saying Spawn returned no PTY and no error", err)
	}
}
