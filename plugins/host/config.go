package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

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
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return cfg, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return config{}, fmt.Errorf("%w: %w", shared.ErrInvalidConfig, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return config{}, fmt.Errorf("%w: trailing data after the JSON object", shared.ErrInvalidConfig)
	}
	if cfg.Shell != "" {
		if _, err := exec.LookPath(cfg.Shell); err != nil {
			return config{}, fmt.Errorf("%w: shell: %w", shared.ErrInvalidConfig, err)
		}
	}
	if err := checkEnv(cfg.Env); err != nil {
		return config{}, fmt.Errorf("%w: env: %w", shared.ErrInvalidConfig, err)
	}
	return cfg, nil
}

// checkEnv rejects variable names a process environment cannot hold.
func checkEnv(env map[string]string) error {
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("bad variable name %q", k)
		}
		if strings.ContainsRune(v, 0) {
			return fmt.Errorf("variable %s: value contains NUL", k)
		}
	}
	return nil
}

// pluginEnv lists variables go-plugin and ptyhost set for the plugin
// process itself; sessions do not inherit them.
var pluginEnv = map[string]bool{
	shared.MagicCookieKey:      true,
	shared.LogLevelEnv:         true,
	"PLUGIN_PROTOCOL_VERSIONS": true,
	"PLUGIN_MIN_PORT":          true,
	"PLUGIN_MAX_PORT":          true,
	"PLUGIN_CLIENT_CERT":       true,
	"PLUGIN_MULTIPLEX_GRPC":    true,
	"PLUGIN_UNIX_SOCKET_DIR":   true,
	"PLUGIN_UNIX_SOCKET_GROUP": true,
}

// childEnv returns base (KEY=VALUE entries) without the plugin's own
// variables, with each layer's variables set in turn.
func childEnv(base []string, layers ...map[string]string) []string {
	env := make([]string, 0, len(base)+8)
	index := make(map[string]int, len(base)+8)
	set := func(k, kv string) {
		if i, ok := index[k]; ok {
			env[i] = kv
			return
		}
		index[k] = len(env)
		env = append(env, kv)
	}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !pluginEnv[k] {
			set(k, kv)
		}
	}
	for _, layer := range layers {
		for k, v := range layer {
			set(k, k+"="+v)
		}
	}
	return env
}
