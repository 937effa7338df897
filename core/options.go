package core

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ptyhost/ptyhost/shared"
)

// Dispatcher finds the plugin that serves an environment type.
// *pluginhost.Plugins (package core/pluginhost, over plugin processes) is
// the one the server uses; StaticEnvironments serves in-process ones, and
// embedders and tests may bring their own.
type Dispatcher interface {
	// Environment returns the environment plugin serving envType, or an
	// error wrapping ErrNoPlugin.
	Environment(envType string) (shared.Environment, error)
}

// Options configure a Manager. The zero value of every field but Store and
// Plugins means its default.
type Options struct {
	// Store records environments and sessions. Required.
	Store Store
	// Plugins serve the environment types. Required.
	Plugins Dispatcher
	// Logger receives the manager's logs; nil discards them.
	Logger *slog.Logger
	// Registerer, when set, receives the manager's Prometheus metrics.
	Registerer prometheus.Registerer

	// ScrollbackBytes is how much output each session keeps for clients
	// that attach later. Default 256 KiB; at least 4 KiB and at most
	// MaxScrollbackBytes.
	ScrollbackBytes int
	// IdleTimeout is how long a running session with no writing client
	// attached (viewers do not count) lives on, unless its environment or
	// the session itself says otherwise (see ParseIdleTimeout). Zero means DefaultIdleTimeout,
	// NoIdleTimeout: an idle session stays until it exits or is destroyed.
	// DestroyWhenIdle destroys a session as soon as its last writing
	// client leaves.
	IdleTimeout time.Duration
	// Linger is how long a session that exited stays attachable, so a
	// client that reconnects sees its end and exit code. Default 5 min.
	Linger time.Duration
	// ActivityInterval is the least time between two writes of a session's
	// last_active_at. Default 5 s.
	ActivityInterval time.Duration
	// Retention is how long the rows of ended sessions (TERMINATED, ERROR)
	// are kept; the manager deletes older ones periodically (PurgeEnded).
	// Zero means DefaultRetention; KeepForever keeps them.
	Retention time.Duration
	// LingerScrollbackBytes bounds the scrollback that exited sessions
	// keep, all together, for clients that attach while they linger; past
	// it, the sessions that exited first lose theirs (an attach then shows
	// only the exit). Each exited session keeps its whole scrollback for
	// 2 minutes, for a client that reconnects at its offset, and then the last
	// ExitReplayBytes or a little more; over the budget, those keeping
	// all of it are cut down first. Default 32 MiB.
	LingerScrollbackBytes int
	// WorkdirRoots, when not empty, are the directories a session's
	// working directory must lie under, for every environment type (see
	// roots.go); plugins get them too, to check the other host paths they
	// give a session. Empty means unrestricted.
	WorkdirRoots []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxClients bounds the clients attached to one session at a time,
	// viewers included; the next attach is ErrTooManyClients, unless it
	// is a writer and a viewer can give way (see AttachWith). Zero means
	// no limit.
	MaxClients int
	// SizePolicy says which size a session's terminal takes when its
	// clients ask for different ones (see SizePolicy); zero is SizeLatest.
	SizePolicy SizePolicy
	// NeverEnv names environment variables no session gets, whether it
	// would inherit them from the plugin's environment or a request or an
	// environment's config sets them (SpawnRequest.UnsetEnv), such as
	// CLAUDECODE, which makes a nested Claude Code refuse to start.
	NeverEnv []string
	// RecordingDir is where session recordings (asciicast v2, recording.go)
	// are kept, as ID.cast (0600; the directory is made 0700); ptyhost
	// serve uses DATA_DIR/recordings. Empty means no session is recorded.
	RecordingDir string
	// Record records every session unless its create or its environment
	// says otherwise (CreateOptions.Record, Environment.Record). Needs
	// RecordingDir.
	Record bool
	// RecordInput records what clients type too ("i" events). A
	// recording may then hold passwords typed into the session; whoever
	// may download it (the read-only token too) reads them.
	RecordInput bool
	// RecordingMaxBytes bounds each recording's file; at the bound the
	// recording stops with a marker event. Zero means
	// DefaultRecordingMaxBytes; at least 4 KiB.
	RecordingMaxBytes int

	// SpawnTimeout bounds how long an environment's plugin may take to
	// start a session (shared.Environment.Spawn), at its create and at
	// each restart in place, whatever the caller's context allows: a
	// plugin that has not answered by then fails the create with an error
	// wrapping ErrSpawn and ErrPluginTimeout (the API answers 504), the
	// session is recorded ERROR, and the start is cancelled, so nothing
	// of it stays behind. Zero means DefaultSpawnTimeout; not negative.
	// Leave room for slow starts: a DOCKER container's creation, an SSH
	// login (an SSH environment's connect_timeout may be up to 10
	// minutes, which the default leaves room for).
	SpawnTimeout time.Duration

	// NodeName names this server in a cluster of servers sharing one
	// database (docs/design.md, "Nodes"): it is recorded on every session
	// it creates (SessionRecord.Node), and Reconcile takes up only the
	// sessions recorded with it, leaving the other nodes' alone. Empty
	// means a single server, which owns every session of its store.
	NodeName string
	// Nodes lists the cluster's nodes for ListNodes, and removes them for
	// RemoveNode when it is a NodeRemover too; nil means a single server,
	// listed as Self.
	Nodes NodeLister
	// Self is how ListNodes lists this server when Nodes is nil: its Name
	// (DefaultNodeName when empty), URL and Version; ListNodes fills in
	// Healthy and Sessions.
	Self Node
	// Relay carries events between the nodes of a cluster (nodeevents.go):
	// this manager's events go out through it, and the other nodes' reach
	// its subscribers. Nil: a single server, whose subscribers see its
	// own events only. Needs NodeName.
	Relay EventRelay

	// HangUpUnknownKept makes Reconcile hang up the sessions the plugins
	// kept even when the store holds the record of none of them, as it
	// hangs up any kept session no live record claims. Without it,
	// Reconcile refuses (UnknownKeptError) and touches none of them: a
	// store that knows none of the sessions the plugins kept is far more
	// likely the wrong database (a new one, a mistyped path, an older
	// backup) than the right one, and a hang-up cannot be undone. Set it
	// for one start, when ending those sessions is meant.
	HangUpUnknownKept bool
}

// Defaults.
const (
	DefaultScrollbackBytes  = 256 << 10
	DefaultIdleTimeout      = NoIdleTimeout
	DefaultLinger           = 5 * time.Minute
	DefaultActivityInterval = 5 * time.Second
	DefaultRetention        = 7 * 24 * time.Hour
	DefaultLingerScrollback = 32 << 20
	DefaultSpawnTimeout     = 11 * time.Minute
	DefaultCols             = 80
	DefaultRows             = 24
	// MaxTermSize bounds cols and rows.
	MaxTermSize = 1000
	// MaxScrollbackBytes bounds Options.ScrollbackBytes: it is the most a
	// plugin keeps per session (maxScrollbackBytes in the SDK's
	// shared/grpc_server_spawn.go, unexported there), which refuses every
	// spawn asking for more. Keep the two equal.
	MaxScrollbackBytes = 1 << 30
)

// Special IdleTimeout values.
const (
	// NoIdleTimeout keeps idle sessions until they exit or are destroyed.
	NoIdleTimeout time.Duration = -1
	// DestroyWhenIdle destroys a session as soon as its last writing client
	// leaves.
	DestroyWhenIdle time.Duration = -2
)

// KeepForever, as Options.Retention, keeps ended sessions' rows forever.
const KeepForever time.Duration = -1

// Validate reports the first invalid field.
func (o Options) Validate() error {
	switch {
	case o.Store == nil:
		return fmt.Errorf("core: Options.Store is required")
	case o.Plugins == nil:
		return fmt.Errorf("core: Options.Plugins is required")
	case o.ScrollbackBytes < 0:
		return fmt.Errorf("core: Options.ScrollbackBytes must not be negative")
	case o.ScrollbackBytes > 0 && o.ScrollbackBytes < 4<<10:
		return fmt.Errorf("core: Options.ScrollbackBytes must be at least 4 KiB")
	case o.ScrollbackBytes > MaxScrollbackBytes:
		return fmt.Errorf("core: Options.ScrollbackBytes must be at most 1 GiB (MaxScrollbackBytes): plugins keep no more, and would refuse every session")
	case o.IdleTimeout < 0 && o.IdleTimeout != NoIdleTimeout && o.IdleTimeout != DestroyWhenIdle:
		return fmt.Errorf("core: Options.IdleTimeout must be positive, NoIdleTimeout or DestroyWhenIdle")
	case o.Linger < 0:
		return fmt.Errorf("core: Options.Linger must not be negative")
	case o.Retention < 0 && o.Retention != KeepForever:
		return fmt.Errorf("core: Options.Retention must be positive or KeepForever")
	case o.LingerScrollbackBytes < 0:
		return fmt.Errorf("core: Options.LingerScrollbackBytes must not be negative")
	case o.SpawnTimeout < 0:
		return fmt.Errorf("core: Options.SpawnTimeout must not be negative")
	case o.Nodes != nil && o.NodeName == "":
		return fmt.Errorf("core: Options.Nodes needs Options.NodeName: a cluster's node records its sessions under its name")
	case o.Relay != nil && o.NodeName == "":
		return fmt.Errorf("core: Options.Relay needs Options.NodeName: the events it carries name their node")
	}
	if err := shared.CheckRoots(o.WorkdirRoots); err != nil {
		return fmt.Errorf("core: Options.WorkdirRoots: %w", err)
	}
	if o.MaxClients < 0 {
		return fmt.Errorf("core: Options.MaxClients must not be negative")
	}
	if _, err := ParseSizePolicy(string(o.SizePolicy)); err != nil {
		return fmt.Errorf("core: Options.SizePolicy: %w", err)
	}
	if err := shared.CheckEnvNames(o.NeverEnv); err != nil {
		return fmt.Errorf("core: Options.NeverEnv: %w", err)
	}
	if err := o.validateRecording(); err != nil {
		return err
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ScrollbackBytes == 0 {
		o.ScrollbackBytes = DefaultScrollbackBytes
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Linger == 0 {
		o.Linger = DefaultLinger
	}
	if o.ActivityInterval == 0 {
		o.ActivityInterval = DefaultActivityInterval
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.LingerScrollbackBytes == 0 {
		o.LingerScrollbackBytes = DefaultLingerScrollback
	}
	if o.SpawnTimeout == 0 {
		o.SpawnTimeout = DefaultSpawnTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// SpawnTimeout returns Options.SpawnTimeout, with its default applied:
// how long a create or a restart may wait for the plugin to start the
// program.
func (m *Manager) SpawnTimeout() time.Duration { return m.opts.SpawnTimeout }
