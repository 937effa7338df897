// Package fakeenv is a shared.Environment for tests whose terminals the
// test drives by hand: it writes what the child prints, reads what was
// typed and the sizes asked for, and decides when and how the child exits.
// No process is involved. It imports only the plugin SDK (shared), so the
// core's own tests and the tests of packages above the core can both use
// it.
//
// An Env and its PTYs are safe for concurrent use: the code under test
// calls the shared.Environment and shared.PTY methods from its goroutines
// while the test calls the others.
package fakeenv

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/ptyhost/ptyhost/shared"
)

// Env serves the environment type FAKE. Its zero value is ready to use:
// Spawn returns a new PTY and remembers it, and ValidateConfig accepts
// every config.
type Env struct {
	mu       sync.Mutex
	spawned  []*PTY
	spawn    func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error)
	validate func(cfg json.RawMessage) error
}

var _ shared.Environment = (*Env)(nil)

// SetSpawn makes Spawn call f instead of making a PTY; nil restores the
// default. A PTY that f makes is not remembered unless f passes it to Add.
func (e *Env) SetSpawn(f func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spawn = f
}

// SetValidate makes ValidateConfig return f's verdict on each config; nil
// restores the default, which accepts every config.
func (e *Env) SetValidate(f func(cfg json.RawMessage) error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.validate = f
}

// Info names the environment "fake", serving type FAKE.
func (e *Env) Info(context.Context) (shared.Info, error) {
	return shared.Info{Name: "fake", Types: []string{"FAKE"}}, nil
}

// Spawn returns a new PTY for req and remembers it, or calls the function
// given to SetSpawn.
func (e *Env) Spawn(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	e.mu.Lock()
	spawn := e.spawn
	e.mu.Unlock()
	if spawn != nil {
		return spawn(ctx, req)
	}
	p := NewPTY(req)
	e.Add(p)
	return p, nil
}

// ValidateConfig accepts cfg, or returns the verdict of the function given
// to SetValidate.
func (e *Env) ValidateConfig(_ context.Context, _ string, cfg json.RawMessage) error {
	e.mu.Lock()
	validate := e.validate
	e.mu.Unlock()
	if validate != nil {
		return validate(cfg)
	}
	return nil
}

// Add remembers p as spawned, for a function given to SetSpawn that makes
// its own PTY.
func (e *Env) Add(p *PTY) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spawned = append(e.spawned, p)
}

// Count returns how many PTYs were spawned (and remembered).
func (e *Env) Count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.spawned)
}

// Spawned returns the remembered PTYs, oldest first.
func (e *Env) Spawned() []*PTY {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*PTY(nil), e.spawned...)
}

// Last returns the PTY spawned last; it fails the test if there is none.
func (e *Env) Last(t testing.TB) *PTY {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.spawned) == 0 {
		t.Fatal("fakeenv: nothing spawned")
	}
	return e.spawned[len(e.spawned)-1]
}
