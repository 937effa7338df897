package core

import (
	"errors"
	"slices"
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
