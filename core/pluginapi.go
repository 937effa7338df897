package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// The contract between the manager and what serves its environment types
// (Options.Plugins): the errors a Dispatcher returns, and the plugin
// listings a PluginController gives. core/pluginhost implements both over
// plugin processes; StaticEnvironments implements both in-process.

var (
	// ErrNoPlugin: no loaded plugin serves the environment type.
	ErrNoPlugin = errors.New("no plugin for environment type")
	// ErrPluginNotFound: no plugin by that name is loaded.
	ErrPluginNotFound = errors.New("plugin not found")
)

// ReasonPluginRestarted is the status reason of a session that ended
// because an operator restarted its plugin (PluginController.Restart).
const ReasonPluginRestarted = "plugin_restarted"

// PluginState is a plugin's state as List reports it.
type PluginState string

// Plugin states.
const (
	PluginStarting   PluginState = "starting"   // its process is being started
	PluginRunning    PluginState = "running"    // serving
	PluginRestarting PluginState = "restarting" // it died; the next attempt is at NextAttempt
	PluginFailed     PluginState = "failed"     // did not start, or crashed too often (circuit open); see Reason
	PluginRefused    PluginState = "refused"    // not started on purpose: checksum, protocol version or type clash; see Reason
	PluginStopped    PluginState = "stopped"    // stopped with the server (Close)
	PluginStatic     PluginState = "static"     // in-process, from StaticEnvironments
)

// PluginStatus describes one plugin, for listings.
type PluginStatus struct {
	// Name is the plugin's name, from its executable ptyhost-plugin-NAME.
	Name string `json:"name"`
	// Version is the version the plugin reports.
	Version string `json:"version,omitempty"`
	Path    string `json:"path,omitempty"`
	// SHA256 is the executable's checksum at its last launch; Pinned says
	// the configuration pins it.
	SHA256       string      `json:"sha256,omitempty"`
	Pinned       bool        `json:"pinned,omitempty"`
	Builtin      bool        `json:"builtin,omitempty"`
	Types        []string    `json:"types"`
	Capabilities []string    `json:"capabilities"`
	State        PluginState `json:"state"`
	// Reason says why a plugin is restarting, failed or refused.
	Reason string `json:"reason,omitempty"`
	// Restarts counts the launches after the first, automatic or not.
	Restarts int `json:"restarts"`
	// NextAttempt is when a restarting plugin is started again.
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	// PID is the running plugin's process id.
	PID int `json:"pid,omitempty"`
}

// PluginController is implemented by Dispatchers that can describe and
// restart their plugins, as *pluginhost.Plugins and StaticEnvironments do;
// the manager's plugin methods and the /api/v1/plugins endpoints use it.
type PluginController interface {
	// List describes every plugin, sorted by name.
	List() []PluginStatus
	// Restart restarts the plugin name and returns its status; an unknown
	// name is an error wrapping ErrPluginNotFound.
	Restart(ctx context.Context, name string) (PluginStatus, error)
}

// ListPlugins describes the plugins, sorted by name; none when the
// manager's Dispatcher is not a PluginController.
func (m *Manager) ListPlugins() []PluginStatus {
	c, ok := m.plugins.(PluginController)
	if !ok {
		return []PluginStatus{}
	}
	return c.List()
}

// RestartPlugin restarts the plugin name (see pluginhost's Plugins.Restart):
// its sessions end with reason plugin_restarted, its circuit closes, and it
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

// Survivor is a session that a plugin process kept running while no server
// was attached to it, as a Dispatcher that reattached to that process
// reports it (SurvivorSource).
type Survivor struct {
	shared.KeptSession
	// Keeper reaches the plugin process that holds the session.
	Keeper shared.Keeper
	// Foreign: the plugin process that keeps it does not serve its
	// EnvironmentType (another plugin does, or none). Reconcile hangs it
	// up and never takes it up: a plugin must not pass a session of its
	// own off as another plugin's.
	Foreign bool
}

// SurvivorSource is implemented by Dispatchers that reattach to the plugin
// processes a previous server left running (*pluginhost.Plugins does).
// Reconcile takes their sessions up again.
type SurvivorSource interface {
	// Survivors lists the sessions held by the plugin processes this
	// Dispatcher reattached to. It is called once, by Reconcile.
	Survivors(ctx context.Context) ([]Survivor, error)
}
