package gormstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/ptyhost/ptyhost/core"
)

// CreateEnvironment inserts env. An existing id yields an error wrapping
// core.ErrAlreadyExists; a Config that is not JSON, one wrapping
// core.ErrInvalidArgument. A zero CreatedAt is set from Options.Now;
// UpdatedAt always is.
func (s *DB) CreateEnvironment(ctx context.Context, env core.Environment) error {
	if env.ID == "" {
		return fmt.Errorf("store: create environment: empty id: %w", core.ErrInvalidArgument)
	}
	if len(env.Config) > 0 && !json.Valid(env.Config) {
		return fmt.Errorf("store: create environment %q: config is not JSON: %w", env.ID, core.ErrInvalidArgument)
	}
	now := s.stamp()
	if env.CreatedAt.IsZero() {
		env.CreatedAt = now
	}
	env.UpdatedAt = now
	m := toEnvironmentModel(env)
	// ON CONFLICT DO NOTHING tells a duplicate by the rows it touched: the
	// same on every driver, whatever the caller's TranslateError setting,
	// and race-free between concurrent creates.
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&m)
	if res.Error != nil {
		return fmt.Errorf("store: create environment %q: %w", env.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: create environment %q: %w", env.ID, core.ErrAlreadyExists)
	}
	return nil
}

// GetEnvironment returns the environment id, or an error wrapping
// core.ErrEnvironmentNotFound.
func (s *DB) GetEnvironment(ctx context.Context, id string) (core.Environment, error) {
	var m environmentModel
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return core.Environment{}, fmt.Errorf("store: environment %q: %w", id, core.ErrEnvironmentNotFound)
	}
	if err != nil {
		return core.Environment{}, fmt.Errorf("store: get environment %q: %w", id, err)
	}
	return m.toCore(), nil
}

// ListEnvironments returns every environment in creation order (then id).
func (s *DB) ListEnvironments(ctx context.Context) ([]core.Environment, error) {
	var ms []environmentModel
	if err := s.db.WithContext(ctx).Order("created_at, id").Find(&ms).Error; err != nil {
		return nil, fmt.Errorf("store: list environments: %w", err)
	}
	envs := make([]core.Environment, len(ms))
	for i, m := range ms {
		envs[i] = m.toCore()
	}
	return envs, nil
}

// UpdateEnvironment writes env's name, config, idle timeout, unset_env,
// record, node and nodes to the row env.ID and
// sets its updated_at from Options.Now, or returns an error wrapping
// core.ErrEnvironmentNotFound. The type and created_at are not changed; a
// Config that is not JSON is an error wrapping core.ErrInvalidArgument.
func (s *DB) UpdateEnvironment(ctx context.Context, env core.Environment) error {
	if len(env.Config) > 0 && !json.Valid(env.Config) {
		return fmt.Errorf("store: update environment %q: config is not JSON: %w", env.ID, core.ErrInvalidArgument)
	}
	res := s.db.WithContext(ctx).Model(&environmentModel{}).Where("id = ?", env.ID).Updates(map[string]any{
		"name":         env.Name,
		"config":       string(env.Config),
		"idle_timeout": env.IdleTimeout,
		"unset_env":    unsetEnvColumn(env.UnsetEnv),
		"record":       env.Record,
		"node":         env.Node,
		"nodes":        unsetEnvColumn(env.Nodes),
		"updated_at":   s.stamp(),
	})
	if res.Error != nil {
		return fmt.Errorf("store: update environment %q: %w", env.ID, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: environment %q: %w", env.ID, core.ErrEnvironmentNotFound)
	}
	return nil
}

var _ core.EnvironmentUpdater = (*DB)(nil)

// DeleteEnvironment removes the environment id, or returns an error
// wrapping core.ErrEnvironmentNotFound. Sessions that name it are left
// alone: whether it is still in use is the manager's question.
func (s *DB) DeleteEnvironment(ctx context.Context, id string) error {
	res := s.db.WithContext(ctx).Where("id = ?", id).Delete(&environmentModel{})
	if res.Error != nil {
		return fmt.Errorf("store: delete environment %q: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: environment %q: %w", id, core.ErrEnvironmentNotFound)
	}
	return nil
}
