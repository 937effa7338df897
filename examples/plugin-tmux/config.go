package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"

	"github.com/ptyhost/ptyhost/shared"
)

// defaultSocket names the tmux server the sessions live on when the config
// names none: `tmux -L ptyhost`.
const defaultSocket = "ptyhost"

// config is a TMUX environment's configuration:
//
//	{"socket": "ptyhost", "keep": true, "shell": "/bin/bash", "env": {"EDITOR": "vi"}}
//
// Every field is optional; unknown fields are an error.
type config struct {
	// Socket names the tmux server (tmux -L SOCKET). Empty means "ptyhost".
	Socket string `json:"socket,omitempty"`
	// Keep leaves a session's tmux session running when ptyhost lets go of
	// it (Kill, Close, a server that stops): ptyhost only detaches its
	// client, and the session can be attached by hand.
	Keep bool `json:"keep,omitempty"`
	// Shell is the program a session runs when it names no command.
	Shell string `json:"shell,omitempty"`
	// Env is added to every session's environment.
	Env map[string]string `json:"env,omitempty"`
}

// socketPattern is what a socket name may be: it becomes a file name in
// tmux's socket directory.
var socketPattern = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$`)

// parseConfig decodes and checks a config. Empty and null mean defaults.
// Errors wrap shared.ErrInvalidConfig.
func parseConfig(raw json.RawMessage) (config, error) {
	var cfg config
	if err := shared.DecodeConfig(raw, &cfg); err != nil {
		return config{}, err
	}
	if cfg.Socket == "" {
		cfg.Socket = defaultSocket
	}
	if !socketPattern.MatchString(cfg.Socket) {
		return config{}, fmt.Errorf("%w: socket %q: use letters, digits, '.', '-' and '_' (at most 64)", shared.ErrInvalidConfig, cfg.Socket)
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
