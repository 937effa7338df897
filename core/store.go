package core

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// Status is a session's lifecycle state as recorded in the store.
type Status string

// Session statuses.
//
// ACTIVE does not mean "has a client": a session is ACTIVE from its start
// (or its take-up by Reconcile) until its last writing client leaves, and
// again from a writer's next attach. A session never attached, or taken up
// and not yet attached, is ACTIVE with 0 connections; only a writing
// client leaving makes a running session IDLE. Viewers (AttachRead) change
// neither.
const (
	StatusStarting   Status = "STARTING"   // recorded before the plugin is asked to start it
	StatusActive     Status = "ACTIVE"     // running, from start until the last writing client leaves
	StatusIdle       Status = "IDLE"       // running, no writing client attached
	StatusTerminated Status = "TERMINATED" // ended: exited or destroyed
	StatusError      Status = "ERROR"      // failed to start, or ended abnormally
)

// Errors returned by the manager and the store.
//
// ErrInvalidArgument is shared's: an argument the manager rejects and one a
// plugin rejects are the same error, and the API answers 400 to both.
// ErrSessionNotFound and ErrAlreadyExists are the manager's own, not
// shared's sentinels of the same text: they speak of the ids a client names
// (the API answers 404 and 409), while a plugin that returns shared's has
// lost or kept a session the manager did not expect, a failure of the
// plugin (502 from a spawn, as docs/plugins.md lists).
var (
	ErrSessionNotFound     = errors.New("session not found")
	ErrEnvironmentNotFound = errors.New("environment not found")
	ErrAlreadyExists       = errors.New("already exists")
	ErrEnvironmentInUse    = errors.New("environment has live sessions")
	ErrInvalidArgument     = shared.ErrInvalidArgument
	ErrClosed              = errors.New("the server is stopping: its session manager is closed")
	// ErrStoreUnavailable wraps a store error the manager could not work
	// around: the database is down or unreachable. The API answers 503.
	ErrStoreUnavailable = errors.New("the database is unavailable")
	// ErrOtherNode: in a cluster, the session runs on another node, which
	// alone can act on it (DestroySession on a node that does not run
	// it). The API answers 503: a request tried again is forwarded there.
	ErrOtherNode = errors.New("the session runs on another node")
	// ErrNotSupported: the store does not implement what the call needs
	// (UpdateEnvironment with a store that is no EnvironmentUpdater). The
	// API answers 501.
	ErrNotSupported = errors.New("not supported by this store")
	// ErrNotRunning: an attachment's Write or Resize on a session whose
	// program has ended (the session lingers, or is gone). The
	// attachment's Next says how it ended.
	ErrNotRunning = errors.New("session is not running")
)

// Environment is a configured place where sessions run: the local host, a
// Docker image, an SSH host. Its Type selects the plugin that serves it; its
// Config is that plugin's business.
type Environment struct {
	ID string `json:"id"`
	// Name is a label for people: at most MaxEnvironmentNameBytes of
	// UTF-8 with no control character.
	Name   string          `json:"name"`
	Type   string          `json:"type"`
	Config json.RawMessage `json:"config,omitempty"`
	// IdleTimeout, when set, is the idle timeout of the sessions created
	// in this environment without one of their own, as ParseIdleTimeout
	// reads it; empty means the server's.
	IdleTimeout string `json:"idle_timeout,omitempty"`
	// UnsetEnv names variables the sessions of this environment do not
	// get, besides their own unset_env (SpawnRequest.UnsetEnv).
	UnsetEnv []string `json:"unset_env,omitempty"`
	// Record, when set, says whether the sessions created in this
	// environment without a record field of their own are recorded
	// (recording.go); nil means the server's Options.Record.
	Record *bool `json:"record,omitempty"`
	// Node, on a HOST environment, names the node of a cluster whose
	// machine it stands for, the one node that serves it (placement.go);
	// in a cluster it defaults to the node that creates the environment.
	// Empty on a single server's, unless given. Only HOST has one.
	Node string `json:"node,omitempty"`
	// Nodes, on any other type, restricts the nodes of a cluster that
	// serve it to these; empty means every node. A single server stores
	// it and serves the environment whatever it says.
	Nodes     []string  `json:"nodes,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SessionRecord is a session's row in the store.
type SessionRecord struct {
	ID            string `json:"id"`
	EnvironmentID string `json:"environment_id"`
	// Node names the server of a cluster that runs the session
	// (Options.NodeName of the manager that created it); empty on a
	// single server, and then left out of the JSON, as before clusters.
	Node         string `json:"node,omitempty"`
	ProjectID    string `json:"project_id,omitempty"`
	BranchName   string `json:"branch_name,omitempty"`
	WorktreePath string `json:"worktree_path,omitempty"`
	// Command is the argv the session runs (CreateOptions.Command, or a
	// restart's); empty means its environment's shell. It is stored, so
	// that a session taken up after a server restart can be restarted in
	// place (RestartSession). The session's variables (Env) are not: they
	// may hold secrets.
	Command []string `json:"command,omitempty"`
	// UnsetEnv names the variables the session asked to be without
	// (CreateOptions.UnsetEnv); names only, kept for the same restart.
	UnsetEnv []string `json:"unset_env,omitempty"`
	// MaxClients bounds the clients attached to the session at a time; 0
	// means the server's Options.MaxClients.
	MaxClients int `json:"max_clients,omitempty"`
	// SizePolicy is the session's size policy; empty means the server's
	// Options.SizePolicy.
	SizePolicy        SizePolicy `json:"size_policy,omitempty"`
	Status            Status     `json:"status"`
	StatusReason      string     `json:"status_reason,omitempty"`
	ActiveConnections int        `json:"active_connections"`
	Cols              int        `json:"cols"`
	Rows              int        `json:"rows"`
	ExitCode          *int       `json:"exit_code"`
	ExitSignal        string     `json:"exit_signal,omitempty"`
	LastActiveAt      time.Time  `json:"last_active_at"`
	// IdleTimeout is the session's idle timeout, spelled as
	// FormatIdleTimeout does: "never", or how long it runs on with no
	// client ("0s": it ends when its last client leaves).
	IdleTimeout string `json:"idle_timeout,omitempty"`
	// DetachedAt is when the session last came to have no writing client
	// (viewers do not count): when its last one left, or when it was
	// created if none attached since. Zero (omitted) while one is attached.
	DetachedAt time.Time `json:"detached_at,omitzero"`
	// IdleDeadline is when the idle timeout will destroy the session: set
	// only while it runs with no writing client and has an idle timeout. Not
	// stored.
	IdleDeadline time.Time `json:"idle_deadline,omitzero"`
	// Restarts counts the session's restarts in place (RestartSession).
	Restarts  int       `json:"restarts,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// EnvironmentStore keeps environments. Implementations return
// ErrEnvironmentNotFound and ErrAlreadyExists (wrapped or not).
type EnvironmentStore interface {
	CreateEnvironment(ctx context.Context, env Environment) error
	GetEnvironment(ctx context.Context, id string) (Environment, error)
	ListEnvironments(ctx context.Context) ([]Environment, error)
	DeleteEnvironment(ctx context.Context, id string) error
}

// EnvironmentUpdater is implemented by stores that can change an
// environment (core/gormstore does); Manager.UpdateEnvironment needs it,
// and is ErrNotSupported without it.
type EnvironmentUpdater interface {
	// UpdateEnvironment replaces the name, config, idle timeout,
	// unset_env, record, node, nodes and updated_at of the environment
	// env.ID, or returns ErrEnvironmentNotFound (wrapped or
	// not). The type and created_at are left alone.
	UpdateEnvironment(ctx context.Context, env Environment) error
}

// SessionStore keeps session rows. Implementations return ErrSessionNotFound
// (wrapped or not).
type SessionStore interface {
	// SaveSession inserts the row, or replaces it whole when the id exists
	// (a session id may be used again after the first session ended).
	SaveSession(ctx context.Context, rec SessionRecord) error
	// UpdateSession applies u to the row and sets updated_at.
	UpdateSession(ctx context.Context, id string, u SessionUpdate) error
	GetSession(ctx context.Context, id string) (SessionRecord, error)
	// ListSessions returns rows in creation order; with statuses given, only
	// rows in one of them.
	ListSessions(ctx context.Context, statuses ...Status) ([]SessionRecord, error)
	// QuerySessions returns the rows q selects, ordered by created_at, then
	// id.
	QuerySessions(ctx context.Context, q SessionQuery) ([]SessionRecord, error)
	// DeleteSessions deletes the rows in one of statuses whose updated_at
	// is before before, and returns how many it deleted.
	DeleteSessions(ctx context.Context, statuses []Status, before time.Time) (int, error)
}

// SessionQuery selects session rows. The zero value selects every row.
type SessionQuery struct {
	// Statuses, when not empty, keeps the rows in one of them.
	Statuses []Status
	// EnvironmentID, when set, keeps the rows of that environment.
	EnvironmentID string
	// After, when set, keeps the rows after it in the order (created_at,
	// id): those created later, or at the same time with a greater id.
	After *SessionKey
	// Limit, when positive, returns at most this many rows.
	Limit int
}

// SessionKey is a row's place in the order of QuerySessions.
type SessionKey struct {
	CreatedAt time.Time
	ID        string
}

// Pinger is implemented by stores that can check their database cheaply
// (core/gormstore does, reading a row of its sessions). The manager's
// StoreHealth uses it, and also reports the store unavailable while the
// sessions' writes keep failing.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Store is everything the manager needs from a database.
type Store interface {
	EnvironmentStore
	SessionStore
}
