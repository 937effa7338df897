package core

import (
	"context"
	"fmt"
)

// PluginController is implemented by Dispatchers that can describe and
// restart their plugins, as *Plugins does; the manager's plugin methods
// and the /api/v1/plugins endpoints use it.
type PluginController interface {
	List() []PluginStatus
	Restart(ctx context.Context, name string) (PluginStatus, error)
}

var _ PluginController = (*Plugins)(nil)

// ListPlugins describes the plugins, sorted by name; none when the
// manager's Dispatcher is not a PluginController.
func (m *Manager) ListPlugins() []PluginStatus {
	c, ok := m.plugins.(PluginController)
	if !ok {
		return []PluginStatus{}
	}
	return c.List()
}

// RestartPlugin restarts the plugin name (see Plugins.Restart): its
// sessions end with reason plugin_restarted, its circuit closes, and it
// starts again. An unknown name wraps ErrPluginNotFound.
func (m *Manager) RestartPlugin(ctx context.Context, name string) (PluginStatus, error) {
	c, ok := m.plugins.(PluginController)
	if !ok {
		return PluginStatus{}, fmt.Errorf("%w: %q", ErrPluginNotFound, name)
	}
	st, err := c.Restart(ctx, name)
	if err == nil {
		m.log.Info("plugin restarted on request", "plugin", name, "state", st.State)
	}
	return st, err
}
