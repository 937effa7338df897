package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// CreateEnvironment validates env, stores it and returns it as the store
// keeps it (with the store's times). The id is generated when
// empty and the name defaults to the id. The type must be served by a
// plugin, and the config must be a JSON object that plugin accepts (when it
// can validate configs). Errors wrap ErrInvalidArgument or ErrAlreadyExists,
// or ErrStoreUnavailable when the store fails or does not answer within
// storeTimeout, as every environment method's do.
func (m *Manager) CreateEnvironment(ctx context.Context, env Environment) (Environment, error) {
	if env.ID == "" {
		env.ID = newID()
	}
	if err := validID(env.ID); err != nil {
		return Environment{}, err
	}
	if env.Name == "" {
		env.Name = env.ID
	}
	m.defaultNode(&env)
	if err := m.validateEnvironment(ctx, &env); err != nil {
		return Environment{}, err
	}
	now := m.now()
	env.CreatedAt, env.UpdatedAt = now, now
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := m.store.CreateEnvironment(sctx, env); err != nil {
		if errors.Is(err, ErrAlreadyExists) {
			return Environment{}, fmt.Errorf("%w: environment %q", ErrAlreadyExists, env.ID)
		}
		return Environment{}, storeFailed(fmt.Errorf("creating environment %q: %w", env.ID, err))
	}
	m.log.Info("environment created", "environment_id", env.ID, "type", env.Type)
	// Best effort, as after an update: the environment is made.
	if got, err := m.GetEnvironment(ctx, env.ID); err == nil {
		env = got // with the store's updated_at
	}
	return env, nil
}

// EnsureEnvironment creates env unless an environment with its id exists.
func (m *Manager) EnsureEnvironment(ctx context.Context, env Environment) (Environment, error) {
	got, err := m.GetEnvironment(ctx, env.ID)
	if !errors.Is(err, ErrEnvironmentNotFound) {
		return got, err
	}
	got, err = m.CreateEnvironment(ctx, env)
	if errors.Is(err, ErrAlreadyExists) {
		// Created concurrently: fine.
		return m.GetEnvironment(ctx, env.ID)
	}
	return got, err
}

// validateConfigTimeout bounds a plugin's validation of an environment's
// config (a variable for tests).
var validateConfigTimeout = 15 * time.Second

// errValidateTimedOut is the cause of a validation's context past
// validateConfigTimeout.
var errValidateTimedOut = errors.New("config validation timeout")

func (m *Manager) validateEnvironment(ctx context.Context, env *Environment) error {
	if env.Type == "" {
		return fmt.Errorf("%w: type is required", ErrInvalidArgument)
	}
	if err := checkTextField("name", env.Name, MaxEnvironmentNameBytes); err != nil {
		return err
	}
	idle, err := normalizeIdleTimeout(env.IdleTimeout)
	if err != nil {
		return err
	}
	env.IdleTimeout = idle
	if err := shared.CheckEnvNames(env.UnsetEnv); err != nil {
		return fmt.Errorf("%w: unset_env: %v", ErrInvalidArgument, err)
	}
	if err := m.checkRecordable(env.Record); err != nil {
		return err
	}
	if err := checkPlacementFields(env); err != nil {
		return err
	}
	cfg := bytes.TrimSpace(env.Config)
	if len(cfg) == 0 || bytes.Equal(cfg, []byte("null")) {
		cfg = []byte("{}")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &obj); err != nil {
		return fmt.Errorf("%w: config must be a JSON object", ErrInvalidArgument)
	}
	env.Config = cfg
	adapter, err := m.plugins.Environment(env.Type)
	if errors.Is(err, ErrNoPlugin) {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if err != nil {
		// The plugin exists but cannot answer now (restarting, failed).
		return err
	}
	v, ok := adapter.(shared.ConfigValidator)
	if !ok {
		return nil
	}
	// Bounded, as a health check is: a plugin that does not answer must
	// not hold the request.
	vctx, cancel := context.WithTimeoutCause(ctx, validateConfigTimeout, errValidateTimedOut)
	defer cancel()
	switch err := v.ValidateConfig(vctx, env.Type, cfg); {
	case err == nil, errors.Is(err, shared.ErrUnsupported):
		return nil
	case errors.Is(err, shared.ErrInvalidConfig), errors.Is(err, shared.ErrInvalidArgument):
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	case errors.Is(context.Cause(vctx), errValidateTimedOut):
		return fmt.Errorf("validating the config: %w: no answer within %v", ErrPluginTimeout, validateConfigTimeout)
	default:
		return fmt.Errorf("validating the config: %w", err)
	}
}

// GetEnvironment returns one environment, or ErrEnvironmentNotFound.
func (m *Manager) GetEnvironment(ctx context.Context, id string) (Environment, error) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	env, err := m.store.GetEnvironment(sctx, id)
	switch {
	case err == nil:
		return env, nil
	case errors.Is(err, ErrEnvironmentNotFound):
		return Environment{}, fmt.Errorf("%w: %q", ErrEnvironmentNotFound, id)
	default:
		return Environment{}, storeFailed(fmt.Errorf("reading environment %q: %w", id, err))
	}
}

// ListEnvironments returns every environment.
func (m *Manager) ListEnvironments(ctx context.Context) ([]Environment, error) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	envs, err := m.store.ListEnvironments(sctx)
	if err != nil {
		return nil, storeFailed(fmt.Errorf("listing environments: %w", err))
	}
	return envs, nil
}

// DeleteEnvironment removes an environment. It is ErrEnvironmentInUse while
// a session runs in it (in a cluster, on any node, as the store records
// it: otherNodesUse), ErrEnvironmentNotFound when unknown, and
// ErrStoreUnavailable when the store fails or does not answer within
// storeTimeout.
//
// The store is not asked under m.mu, which every request on a session
// takes: a database that hangs would hold them all. The environment is
// marked as being deleted under m.mu instead, after the check that no
// session of this manager runs in it, and a create that reserves a
// session in it meanwhile waits for the delete's outcome (reserveLocked).
func (m *Manager) DeleteEnvironment(ctx context.Context, id string) error {
	if err := m.otherNodesUse(ctx, id); err != nil {
		return err
	}
	done, err := m.beginEnvDelete(ctx, id)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	err = m.store.DeleteEnvironment(sctx, id)
	cancel()
	m.mu.Lock()
	delete(m.envDeleting, id)
	// Counted whatever the outcome: a delete that timed out may still
	// have happened in the database, and a create that looked the
	// environment up before only looks again.
	m.envDeletes++
	m.mu.Unlock()
	close(done)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrEnvironmentNotFound):
		return fmt.Errorf("%w: %q", ErrEnvironmentNotFound, id)
	default:
		return storeFailed(fmt.Errorf("deleting environment %q: %w", id, err))
	}
}

// beginEnvDelete marks environment id as being deleted, once no session
// of this manager starts or runs in it, and returns the channel to close
// when the delete is done. Another delete of id under way is waited for,
// within ctx, so that one at a time asks the store.
func (m *Manager) beginEnvDelete(ctx context.Context, id string) (chan struct{}, error) {
	m.mu.Lock()
	for ch := m.envDeleting[id]; ch != nil; ch = m.envDeleting[id] {
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("environment %q is being deleted: %w", id, ctx.Err())
		}
		m.mu.Lock()
	}
	defer m.mu.Unlock()
	for _, s := range m.sessions {
		s.mu.Lock()
		inUse := s.rec.EnvironmentID == id && (s.state == stateStarting || s.state == stateRunning)
		s.mu.Unlock()
		if inUse {
			return nil, fmt.Errorf("%w: %q", ErrEnvironmentInUse, id)
		}
	}
	done := make(chan struct{})
	m.envDeleting[id] = done
	return done, nil
}

// otherNodesUse returns ErrEnvironmentInUse when, in a cluster, the store
// records a running session (STARTING, ACTIVE, IDLE) of environment id on
// another node. It is a check, not a lock: a session another node creates
// in the environment at the same moment is not seen. Sessions of a node
// declared lost (ERROR node_lost) no longer count, and rows that name no
// node (from before the database served a cluster) have no node to run on.
func (m *Manager) otherNodesUse(ctx context.Context, id string) error {
	if m.opts.Nodes == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	recs, err := m.store.QuerySessions(sctx, SessionQuery{
		Statuses: []Status{StatusStarting, StatusActive, StatusIdle}, EnvironmentID: id})
	if err != nil {
		return storeFailed(err)
	}
	for _, rec := range recs {
		if rec.Node != "" && rec.Node != m.opts.NodeName {
			return fmt.Errorf("%w: %q: session %s runs in it on node %s", ErrEnvironmentInUse, id, rec.ID, rec.Node)
		}
	}
	return nil
}

// EnvironmentUpdate changes an environment: nil fields are left as they
// are. An environment's type cannot change.
type EnvironmentUpdate struct {
	Name *string
	// Config replaces the whole config when not nil.
	Config json.RawMessage
	// IdleTimeout replaces the idle timeout of the sessions created from
	// now on (ParseIdleTimeout); "" returns to the server's.
	IdleTimeout *string
	// UnsetEnv replaces the variables the sessions created from now on do
	// not get; empty: none.
	UnsetEnv *[]string
	// SetRecord replaces the environment's Record with Record (nil: the
	// server's setting) for the sessions created from now on.
	SetRecord bool
	Record    *bool
	// Node replaces a HOST environment's node when not nil; "" gives it
	// this server's node (in a cluster; none on a single server).
	// Sessions already running stay where they run.
	Node *string
	// Nodes replaces the nodes that serve the environment when not nil;
	// empty: every node.
	Nodes *[]string
}

// UpdateEnvironment changes an environment and returns it. A new config is
// validated by the plugin that serves the type, so a bad one is an error
// wrapping ErrInvalidArgument with the plugin's reason. Sessions already
// running keep the config they started with. An unknown id is
// ErrEnvironmentNotFound. A store that does not implement
// EnvironmentUpdater makes it an error wrapping ErrNotSupported, whatever
// the id and the update.
func (m *Manager) UpdateEnvironment(ctx context.Context, id string, u EnvironmentUpdate) (Environment, error) {
	up, ok := m.store.(EnvironmentUpdater)
	if !ok {
		return Environment{}, fmt.Errorf("updating an environment is %w (it does not implement core.EnvironmentUpdater)", ErrNotSupported)
	}
	env, err := m.GetEnvironment(ctx, id)
	if err != nil {
		return Environment{}, err
	}
	if u.Name != nil {
		if *u.Name == "" {
			return Environment{}, fmt.Errorf("%w: name must not be empty", ErrInvalidArgument)
		}
		env.Name = *u.Name
	}
	if u.Config != nil {
		env.Config = u.Config
	}
	if u.IdleTimeout != nil {
		env.IdleTimeout = *u.IdleTimeout
	}
	if u.UnsetEnv != nil {
		env.UnsetEnv = *u.UnsetEnv
	}
	if u.SetRecord {
		env.Record = u.Record
	}
	if u.Node != nil {
		env.Node = *u.Node
		m.defaultNode(&env)
	}
	if u.Nodes != nil {
		env.Nodes = *u.Nodes
	}
	if err := m.validateEnvironment(ctx, &env); err != nil {
		return Environment{}, err
	}
	env.UpdatedAt = m.now()
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := up.UpdateEnvironment(sctx, env); err != nil {
		if errors.Is(err, ErrEnvironmentNotFound) {
			return Environment{}, fmt.Errorf("%w: %q", ErrEnvironmentNotFound, id)
		}
		return Environment{}, storeFailed(fmt.Errorf("updating environment %q: %w", id, err))
	}
	m.log.Info("environment updated", "environment_id", env.ID, "type", env.Type)
	// Best effort, within a bound of its own: the update is made.
	if got, err := m.GetEnvironment(ctx, id); err == nil {
		env = got // with the store's updated_at
	}
	return env, nil
}

// EnvironmentHealth asks the plugin serving the environment whether
// sessions can start in it. Answers are cached for a few seconds
// (pluginhost.Options.HealthCacheTTL); while an answer says the environment is
// unavailable, CreateSession refuses it with that answer (an error
// wrapping shared.ErrUnavailable) without asking the plugin. A plugin that
// is not running makes its environments unhealthy; one that does not
// report health makes them unknown. An unknown id is
// ErrEnvironmentNotFound.
func (m *Manager) EnvironmentHealth(ctx context.Context, id string) (EnvironmentHealth, error) {
	env, err := m.GetEnvironment(ctx, id)
	if err != nil {
		return EnvironmentHealth{}, err
	}
	h := EnvironmentHealth{EnvironmentID: env.ID, Type: env.Type}
	adapter, err := m.plugins.Environment(env.Type)
	if err != nil {
		h.Status, h.Reason, h.CheckedAt = HealthUnhealthy, err.Error(), m.now()
		return h, nil
	}
	r := environmentHealth(ctx, adapter, env.Type, env.Config)
	if ctx.Err() != nil {
		return EnvironmentHealth{}, ctx.Err()
	}
	h.Status, h.CheckedAt = r.Status, r.CheckedAt.UTC()
	if r.Status == HealthUnhealthy && r.Err != nil {
		h.Reason = r.Err.Error()
	}
	return h, nil
}
