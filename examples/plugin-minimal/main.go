// Command ptyhost-plugin-minimal is the smallest useful ptyhost environment
// plugin, written against the plugin SDK (package shared) alone, as
// docs/plugins.md walks through it. Type MINIMAL runs each session's
// command, or /bin/sh when it names none, in a pseudo-terminal on the
// machine the plugin runs on. It keeps no state of its own: the SDK's
// server tracks the sessions, so it is safe for concurrent use.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/ptyhost/ptyhost/shared"
)

// config is a MINIMAL environment's configuration, {"env": {"EDITOR": "vi"}}.
// Every field is optional; unknown fields are an error.
type config struct {
	// Env is added to every session's environment.
	Env map[string]string `json:"env,omitempty"`
}

// minimal is the plugin: shared.Environment's two methods.
type minimal struct{}

func (minimal) Info(context.Context) (shared.Info, error) {
	return shared.Info{Name: "minimal", Version: "0.1.0", Types: []string{"MINIMAL"},
		Capabilities: []string{shared.CapResize}}, nil
}

func (minimal) Spawn(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	var cfg config
	if err := shared.DecodeConfig(req.Config, &cfg); err != nil {
		return nil, err
	}
	if err := shared.CheckEnv(cfg.Env); err != nil {
		return nil, fmt.Errorf("%w: env: %w", shared.ErrInvalidConfig, err)
	}
	if err := shared.CheckEnv(req.Env); err != nil {
		return nil, fmt.Errorf("%w: session env: %w", shared.ErrInvalidArgument, err)
	}
	dir, err := shared.WorkingDir(req.Dir)
	if err != nil {
		return nil, err
	}
	argv := req.Command
	if len(argv) == 0 {
		argv = []string{"/bin/sh"}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = shared.ChildEnvWithout(shared.EnvInDir(os.Environ(), dir), req.UnsetEnv, map[string]string{"TERM": "xterm-256color"}, cfg.Env, req.Env)
	return shared.StartCommand(cmd, req.Size)
}

func main() { shared.Serve(minimal{}) }
