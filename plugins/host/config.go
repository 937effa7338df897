package main

import (
	"encoding/json"
	"fmt"
	"os/exec"

	"github.com/ptyhost/ptyhost/shared"
)

// config is a HOST environment's configuration:
//
//	{"shell": "/bin/bash", "env": {"EDITOR": "vi"}}
//
// Both fields are optional; unknown fields are an error.
type config struct {
	// Shell is the program a session runs when it names no command.
	Shell string `json:"shell,omitempty"`
	// Env is added to every session's environment.
	Env map[string]string `json:"env,omitempty"`
}

// parseConfig decodes and checks a config. Empty and null mean defaults.
// Errors wrap shared.ErrInvalidConfig.
func parseConfig(raw json.RawMessage) (config, error) {
	var cfg config
	if err := shared.DecodeConfig(raw, &cfg); err != nil {
		return config{}, err
	}
	if cfg.Shell != "" {
		if _, err := exec.LookPath(cfg.Shell); err != nil {
			return config{}, fmt.Errorf("%w: shell: %w", shared.ErrInvalidConfig, err)
		}
	}
	if err := shared.CheckEnv(cfg.Env); err != nil {
		return config{}, fmt.Errorf("%w: env: %w", shared.ErrInvalidConfig, err)
	}
	return cfg, nil
}
