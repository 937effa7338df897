package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ptyhost/ptyhost/shared"
)

// CreateEnvironment validates env and stores it. The id is generated when
// empty and the name defaults to the id. The type must be served by a
// plugin, and the config must be a JSON object that plugin accepts (when it
// can validate configs). Errors wrap ErrInvalidArgument or ErrAlreadyExists.
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
	if err := m.validateEnvironment(ctx, &env); err != nil {
		return Environment{}, err
	}
	now := m.now()
	env.CreatedAt, env.UpdatedAt = now, now
	if err := m.store.CreateEnvironment(ctx, env); err != nil {
		if errors.Is(err, ErrAlreadyExists) {
			return Environment{}, fmt.Errorf("%w: environment %q", ErrAlreadyExists, env.ID)
		}
		return Environment{}, err
	}
	m.log.Info("environment created", "environment_id", env.ID, "type", env.Type)
	return env, nil
}

// EnsureEnvironment creates env unless an environment with its id exists.
func (m *Manager) EnsureEnvironment(ctx context.Context, env Environment) (Environment, error) {
	got, err := m.store.GetEnvironment(ctx, env.ID)
	if err == nil {
		return got, nil
	}
	if !errors.Is(err, ErrEnvironmentNotFound) {
		return Environment{}, err
	}
	got, err = m.CreateEnvironment(ctx, env)
	if errors.Is(err, ErrAlreadyExists) {
		// Created concurrently: fine.
		return m.store.GetEnvironment(ctx, env.ID)
	}
	return got, err
}

func (m *Manager) validateEnvironment(ctx context.Context, env *Environment) error {
	if env.Type == "" {
		return fmt.Errorf("%w: type is required", ErrInvalidArgument)
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
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	v, ok := adapter.(shared.ConfigValidator)
	if !ok {
		return nil
	}
	switch err := v.ValidateConfig(ctx, env.Type, cfg); {
	case err == nil, errors.Is(err, shared.ErrUnsupported):
		return nil
	case errors.Is(err, shared.ErrInvalidConfig), errors.Is(err, shared.ErrInvalidArgument):
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	default:
		return fmt.Errorf("validating the config: %w", err)
	}
}

// GetEnvironment returns one environment, or ErrEnvironmentNotFound.
func (m *Manager) GetEnvironment(ctx context.Context, id string) (Environment, error) {
	env, err := m.store.GetEnvironment(ctx, id)
	if errors.Is(err, ErrEnvironmentNotFound) {
		return Environment{}, fmt.Errorf("%w: %q", ErrEnvironmentNotFound, id)
	}
	return env, err
}

// ListEnvironments returns every environment.
func (m *Manager) ListEnvironments(ctx context.Context) ([]Environment, error) {
	return m.store.ListEnvironments(ctx)
}

// DeleteEnvironment removes an environment. It is ErrEnvironmentInUse while
// a session runs in it, and ErrEnvironmentNotFound when unknown.
func (m *Manager) DeleteEnvironment(ctx context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock() // held so no session starts in it meanwhile
	for _, s := range m.sessions {
		s.mu.Lock()
		inUse := s.rec.EnvironmentID == id && (s.state == stateStarting || s.state == stateRunning)
		s.mu.Unlock()
		if inUse {
			return fmt.Errorf("%w: %q", ErrEnvironmentInUse, id)
		}
	}
	err := m.store.DeleteEnvironment(ctx, id)
	if errors.Is(err, ErrEnvironmentNotFound) {
		return fmt.Errorf("%w: %q", ErrEnvironmentNotFound, id)
	}
	return err
}
