package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"

	"github.com/hashicorp/go-hclog"

	"github.com/ptyhost/ptyhost/shared"
)

const (
	// Version is the plugin's version, reported by Info.
	Version = "0.1.0"
	// EnvironmentType is the environment type the plugin serves.
	EnvironmentType = "HOST"

	defaultShell = "/bin/sh"
	defaultCols  = 80
	defaultRows  = 24
)

// Host is the HOST environment: sessions are local processes, started in a
// new session with the pseudo-terminal as controlling terminal. It is safe
// for concurrent use and holds no per-session state; each session is a
// *hostPTY.
type Host struct {
	logger hclog.Logger
	// orphans is set in the plugin process (see adoptOrphans); nil
	// elsewhere.
	orphans *orphanage
}

var (
	_ shared.Environment     = (*Host)(nil)
	_ shared.ConfigValidator = (*Host)(nil)
)

// New returns the HOST environment. A nil logger discards logs.
func New(logger hclog.Logger) *Host {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Host{logger: logger}
}

// Info implements shared.Environment.
func (h *Host) Info(context.Context) (shared.Info, error) {
	return shared.Info{
		Name:         "host",
		Version:      Version,
		Types:        []string{EnvironmentType},
		Capabilities: []string{shared.CapResize, shared.CapValidateConfig},
	}, nil
}

// ValidateConfig implements shared.ConfigValidator.
func (h *Host) ValidateConfig(_ context.Context, envType string, raw json.RawMessage) error {
	if err := checkType(envType); err != nil {
		return err
	}
	_, err := parseConfig(raw)
	return err
}

// Spawn implements shared.Environment. It starts req.Command (default: the
// configured shell, else $SHELL, else /bin/sh, as argv [shell]) in req.Dir
// (default: the user's home directory) with the plugin's environment,
// TERM=xterm-256color and COLORTERM=truecolor, the config's env and the
// session's env, later ones winning, without the variables req.UnsetEnv
// names.
func (h *Host) Spawn(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	if err := checkType(req.EnvironmentType); err != nil {
		return nil, err
	}
	cfg, err := parseConfig(req.Config)
	if err != nil {
		return nil, err
	}
	dir, err := shared.WorkingDir(req.Dir)
	if err != nil {
		return nil, err
	}
	if err := shared.CheckEnv(req.Env); err != nil {
		return nil, fmt.Errorf("%w: session env: %w", shared.ErrInvalidArgument, err)
	}
	argv := req.Command
	if len(argv) == 0 {
		argv = []string{shellFor(cfg)}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if cmd.Err != nil {
		return nil, fmt.Errorf("%w: command %q: %w", shared.ErrInvalidArgument, argv[0], cmd.Err)
	}
	cmd.Dir = dir
	// PWD is the session's directory, not the plugin's, and the plugin's
	// OLDPWD is left out (EnvInDir).
	cmd.Env = shared.ChildEnvWithout(shared.EnvInDir(os.Environ(), dir), req.UnsetEnv, terminalEnv, cfg.Env, req.Env)

	size := req.Size
	if size.Cols == 0 || size.Rows == 0 {
		size = shared.Size{Cols: defaultCols, Rows: defaultRows}
	}
	log := h.logger.With("session_id", req.SessionID)
	p, err := startPTY(cmd, size, log, h.orphans)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			err = fmt.Errorf("%w: %w", shared.ErrInvalidArgument, err)
		}
		return nil, fmt.Errorf("start %q: %w", argv[0], err)
	}
	log.Debug("session started", "pid", p.pid, "command", argv[0], "dir", dir)
	return p, nil
}

// terminalEnv tells programs what the session's terminal supports: xterm's
// control sequences, 256 colours and 24-bit colour.
var terminalEnv = map[string]string{"TERM": "xterm-256color", "COLORTERM": "truecolor"}

// checkType rejects environment types other than HOST. Empty is HOST.
func checkType(envType string) error {
	if envType != "" && envType != EnvironmentType {
		return fmt.Errorf("%w: environment type %q is not %s", shared.ErrInvalidArgument, envType, EnvironmentType)
	}
	return nil
}

// shellFor returns the shell to run when a session names no command.
func shellFor(cfg config) string {
	if cfg.Shell != "" {
		return cfg.Shell
	}
	if sh := os.Getenv("SHELL"); sh != "" {
		return sh
	}
	return defaultShell
}
