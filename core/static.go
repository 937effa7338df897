package core

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/ptyhost/ptyhost/shared"
)

// StaticEnvironments is a Dispatcher of in-process environments keyed by
// the environment type they serve, for embedders and tests: no plugin
// process is involved. It is also a PluginController that lists each
// environment as a plugin named after its type, in state PluginStatic,
// and refuses to restart it. It is safe for concurrent use as long as the
// map is not changed.
type StaticEnvironments map[string]shared.Environment

var (
	_ Dispatcher       = StaticEnvironments(nil)
	_ PluginController = StaticEnvironments(nil)
)

// Environment returns the environment serving envType, or an error
// wrapping ErrNoPlugin.
func (s StaticEnvironments) Environment(envType string) (shared.Environment, error) {
	env, ok := s[envType]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrNoPlugin, envType)
	}
	return env, nil
}

// Types returns the served environment types, sorted.
func (s StaticEnvironments) Types() []string { return slices.Sorted(maps.Keys(s)) }

// List describes every environment as a static plugin, sorted by name.
func (s StaticEnvironments) List() []PluginStatus {
	list := make([]PluginStatus, 0, len(s))
	for _, typ := range s.Types() {
		list = append(list, PluginStatus{Name: typ, Types: []string{typ}, Capabilities: []string{}, State: PluginStatic})
	}
	return list
}

// Restart fails: an in-process environment cannot be restarted
// (ErrInvalidArgument); an unknown name wraps ErrPluginNotFound.
func (s StaticEnvironments) Restart(_ context.Context, name string) (PluginStatus, error) {
	if _, ok := s[name]; !ok {
		return PluginStatus{}, fmt.Errorf("%w: %q", ErrPluginNotFound, name)
	}
	return PluginStatus{}, fmt.Errorf("%w: plugin %s runs in-process and cannot be restarted", ErrInvalidArgument, name)
}
