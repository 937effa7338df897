package shared

import (
	"context"
	"encoding/json"
	"io"
)

// Environment is what an environment plugin implements. It is the whole
// required surface: describe yourself, and spawn a terminal.
//
// Implementations must be safe for concurrent use: the host spawns many
// sessions at once.
type Environment interface {
	// Info describes the plugin. The host calls it once, right after the
	// plugin starts, to learn which environment types it serves.
	Info(ctx context.Context) (Info, error)

	// Spawn starts the session's command in a new pseudo-terminal of the
	// requested size and returns it. ctx bounds the start only: the session
	// lives on after Spawn returns, until it exits or is killed. A failing
	// Spawn must leave nothing behind: no process, container or connection.
	Spawn(ctx context.Context, req SpawnRequest) (PTY, error)
}

// PTY is one running session as seen from the host.
//
// Read returns the terminal's output bytes exactly as the child wrote them,
// and io.EOF once the child has exited and every output byte has been
// returned. Only then does Wait return. Read is called from one goroutine;
// Write, Resize and Kill may be called concurrently with it and with each
// other.
type PTY interface {
	io.Reader
	// Write sends input bytes (keystrokes) to the terminal.
	io.Writer

	// Resize changes the terminal's size in character cells.
	Resize(ctx context.Context, size Size) error

	// Wait blocks until the child has exited and reports how. It is called
	// after Read has returned io.EOF.
	Wait(ctx context.Context) (ExitStatus, error)

	// Kill ends the child and everything it started. Output produced before
	// the kill is still delivered by Read, followed by io.EOF. It should
	// return quickly; a kill after the child exited does nothing.
	Kill(ctx context.Context) error

	// Close releases every resource the session held (processes, containers,
	// channels), killing what still runs. It is called exactly once, last,
	// and also when Spawn's caller gives up on the session: then a Read may
	// be blocked, and Close must make it return.
	io.Closer
}

// SpawnRequest is what the host asks an environment to start.
type SpawnRequest struct {
	// SessionID is the host's id for the session; adapters use it to label
	// what they create.
	SessionID string
	// EnvironmentID and EnvironmentType name the environment the session
	// runs in.
	EnvironmentID   string
	EnvironmentType string
	// Config is the environment's configuration, as stored by the host.
	Config json.RawMessage
	// Dir is the working directory. Empty means the environment's default.
	Dir string
	// Command is the argv to run. Empty means the environment's shell.
	Command []string
	// Env holds extra environment variables for the child.
	Env map[string]string
	// Size is the terminal's initial size.
	Size Size
	// WorkdirRoots, when not empty, are the directories the host allows
	// sessions to work in (the server's --workdir-root). The host has
	// checked Dir against them before Spawn; a plugin that gives the
	// session other paths of its machine (a container's bind mounts, say)
	// must check each lies under one of them, and refuse the spawn with an
	// error wrapping ErrPermissionDenied otherwise. Empty means no
	// restriction.
	WorkdirRoots []string
	// OutputOffset is the absolute offset of the session's first output
	// byte: 0 for a new session. The SDK counts the output it keeps from
	// it (see Keeper); adapters can ignore it.
	OutputOffset int64
	// ScrollbackBytes bounds the output the SDK keeps for a host that
	// attaches later; 0 means DefaultScrollbackBytes. Adapters can ignore
	// it.
	ScrollbackBytes int
	// UnsetEnv names variables the child must not have: removed from what
	// it would inherit and from every layer (the environment's config, Env)
	// — it wins over all of them. The host passes the environment's and the
	// session's unset_env and the server's never-passed variables, names
	// checked not to be empty or hold '=' or NUL. ChildEnvWithout applies
	// it to a process the plugin starts; a remote or container environment
	// removes them there (docs/plugins.md tells how the SSH and DOCKER
	// plugins do).
	UnsetEnv []string
}

// Size is a terminal size in character cells.
type Size struct {
	Cols uint16
	Rows uint16
}

// ExitStatus tells how a session's process ended.
type ExitStatus struct {
	// Code is the exit code; by shell convention 128+n when the process
	// died of signal n.
	Code int
	// Signal names the signal that killed the process ("SIGKILL"), if any.
	// The host keeps at most MaxSignalLen bytes of it, as text (see
	// MaxReasonLen).
	Signal string
	// Reason explains an abnormal end that is not the process's own doing,
	// such as a lost connection to the remote host. Empty otherwise. The
	// host keeps at most MaxReasonLen bytes of it, control characters
	// made spaces.
	Reason string
}

// Info describes a plugin to the host.
type Info struct {
	// Name is the plugin's name, such as "host".
	Name string
	// Version is the plugin's own version.
	Version string
	// Types lists the environment types the plugin serves, such as "HOST".
	Types []string
	// Capabilities lists optional features by name (see the Cap constants).
	Capabilities []string
}

// Capabilities a plugin may announce in Info.
const (
	// CapResize: the plugin honours Resize.
	CapResize = "resize"
	// CapValidateConfig: the plugin implements ConfigValidator.
	CapValidateConfig = "validate_config"
	// CapHealth: the plugin implements HealthChecker.
	CapHealth = "health"
)

// ConfigValidator is implemented by plugins that can check an environment's
// configuration before any session uses it.
type ConfigValidator interface {
	// ValidateConfig returns an error wrapping ErrInvalidConfig that says
	// what is wrong, or nil.
	ValidateConfig(ctx context.Context, envType string, config json.RawMessage) error
}

// HealthChecker is implemented by plugins whose environments depend on
// something that can be down, such as a daemon or a remote host.
type HealthChecker interface {
	// Health reports whether sessions can be started in the environment
	// with this configuration. A nil error means healthy; otherwise the
	// error says why not.
	Health(ctx context.Context, envType string, config json.RawMessage) error
}
