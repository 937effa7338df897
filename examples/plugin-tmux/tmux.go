package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/ptyhost/ptyhost/shared"
)

const (
	// Version is the plugin's version, reported by Info.
	Version = "0.1.0"
	// EnvironmentType is the environment type the plugin serves.
	EnvironmentType = "TMUX"

	defaultShell = "/bin/sh"
	defaultCols  = 80
	defaultRows  = 24

	// newSessionTries bounds the tries of new-session against a server
	// that is exiting.
	newSessionTries = 3
)

// Tmux is the TMUX environment. Each session is a tmux session, named by
// the ptyhost session id, on the tmux server the config names; what the
// host sees is a tmux client attached to it in a pseudo-terminal of the
// plugin's. It is safe for concurrent use and holds no per-session state;
// each session is a *tmuxPTY.
type Tmux struct {
	logger hclog.Logger
}

var (
	_ shared.Environment     = (*Tmux)(nil)
	_ shared.ConfigValidator = (*Tmux)(nil)
	_ shared.HealthChecker   = (*Tmux)(nil)
)

// New returns the TMUX environment. A nil logger discards logs.
func New(logger hclog.Logger) *Tmux {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Tmux{logger: logger}
}

// Info implements shared.Environment.
func (t *Tmux) Info(context.Context) (shared.Info, error) {
	return shared.Info{
		Name:         "tmux",
		Version:      Version,
		Types:        []string{EnvironmentType},
		Capabilities: []string{shared.CapResize, shared.CapValidateConfig, shared.CapHealth},
	}, nil
}

// ValidateConfig implements shared.ConfigValidator.
func (t *Tmux) ValidateConfig(_ context.Context, envType string, raw json.RawMessage) error {
	if err := checkType(envType); err != nil {
		return err
	}
	_, err := parseConfig(raw)
	return err
}

// Health implements shared.HealthChecker: tmux 3.3 or newer must be
// installed (for #{pane_dead_signal} and remain-on-exit-format).
func (t *Tmux) Health(ctx context.Context, envType string, raw json.RawMessage) error {
	if err := t.ValidateConfig(ctx, envType, raw); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "tmux", "-V").Output()
	if err != nil {
		return fmt.Errorf("%w: tmux -V: %w", shared.ErrUnavailable, err)
	}
	if major, minor, ok := tmuxVersion(string(out)); ok && (major < 3 || major == 3 && minor < 3) {
		return fmt.Errorf("%w: %s is too old; this plugin needs tmux 3.3 or newer", shared.ErrUnavailable, strings.TrimSpace(string(out)))
	}
	return nil
}

// Spawn implements shared.Environment. It creates the tmux session
// detached — req.Command (default: the configured shell, else $SHELL, else
// /bin/sh) in req.Dir (default: the home directory) with the config's env
// and the session's env — and attaches a tmux client to it in a new
// pseudo-terminal of req.Size, which is what the host reads and writes.
func (t *Tmux) Spawn(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	if err := checkType(req.EnvironmentType); err != nil {
		return nil, err
	}
	cfg, err := parseConfig(req.Config)
	if err != nil {
		return nil, err
	}
	name, err := sessionName(req.SessionID)
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
	if _, err := exec.LookPath(argv[0]); err != nil {
		return nil, fmt.Errorf("%w: command %q: %w", shared.ErrInvalidArgument, argv[0], err)
	}
	size := req.Size
	if size.Cols == 0 || size.Rows == 0 {
		size = shared.Size{Cols: defaultCols, Rows: defaultRows}
	}
	env := maps.Clone(cfg.Env)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, req.Env)
	run, err := withoutUnset(argv, env, req.UnsetEnv)
	if err != nil {
		return nil, err
	}

	srv := tmuxServer{socket: cfg.Socket, env: tmuxEnviron(os.Environ())}
	log := t.logger.With("session_id", req.SessionID, "socket", cfg.Socket)
	args := newSessionArgs(name, dir, size, env, run, req.UnsetEnv)
	out, err := srv.run(ctx, args...)
	for try := 1; errors.Is(err, errServerExited) && try < newSessionTries; try++ {
		// The server was exiting (its last session had ended) as tmux
		// reached it; the next try starts a new one.
		out, err = srv.run(ctx, args...)
	}
	if err != nil {
		switch {
		case errors.Is(err, errDuplicate):
			return nil, fmt.Errorf("%w: tmux session %q exists already on socket %q (kept from an earlier session? attach with `tmux -L %s attach -t %s`, or kill it)",
				shared.ErrAlreadyExists, name, cfg.Socket, cfg.Socket, target(name))
		case errors.Is(err, exec.ErrNotFound):
			return nil, fmt.Errorf("%w: %w", shared.ErrUnavailable, err)
		case ctx.Err() != nil:
			// tmux may have created the session before it was stopped.
			cleanup(srv, name, log)
		}
		return nil, fmt.Errorf("create tmux session: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		cleanup(srv, name, log)
		return nil, fmt.Errorf("create tmux session: unexpected output %q", out)
	}
	p, err := attach(ctx, srv, name, pid, size, cfg.Keep, log)
	if err != nil {
		cleanup(srv, name, log)
		return nil, fmt.Errorf("attach to tmux session %q: %w", name, err)
	}
	log.Debug("session started", "command", argv[0], "dir", dir, "keep", cfg.Keep)
	return p, nil
}

// cleanup kills a session Spawn created but cannot hand over.
func cleanup(srv tmuxServer, name string, log hclog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), tmuxTimeout)
	defer cancel()
	if err := srv.killSession(ctx, name); err != nil {
		log.Warn("could not kill the tmux session of a failed spawn", "error", err)
	}
}

// withoutUnset keeps the session from having the variables unset names
// (SpawnRequest.UnsetEnv: the session's unset_env, the server's
// --never-env). It deletes them from env, the session's own variables, and
// returns argv run through env(1) — "env -u NAME … -- argv", which execs
// argv in its place, the same process — since the command also inherits
// the tmux server's environment (the plugin's, when the server started,
// and what tmux takes from the client that created the session), which
// tmux cannot remove a variable from for one session's first process
// (newSessionArgs removes them for the session's later windows and
// panes). With no names argv is returned as it is.
func withoutUnset(argv []string, env map[string]string, unset []string) ([]string, error) {
	if len(unset) == 0 {
		return argv, nil
	}
	for _, k := range unset {
		delete(env, k)
	}
	path, err := exec.LookPath("env")
	if err != nil {
		return nil, fmt.Errorf("%w: env, which removes the variables the session must not have: %w", shared.ErrUnavailable, err)
	}
	run := []string{path}
	for _, k := range unset {
		run = append(run, "-u", k)
	}
	return append(append(run, "--"), argv...), nil
}

// newSessionArgs is the tmux command list that creates a session, prints
// the process id of its command, and, before that command can have
// exited, sets what this plugin depends on:
//
//   - remain-on-exit: the pane stays after its command exits, so that the
//     exit status can be read (#{pane_dead_status}, #{pane_dead_signal}),
//     without a message on it;
//   - status off: the pane is the whole terminal, the size the host asked
//     for;
//   - destroy-unattached off: a session left unattached (keep) stays.
//
// It also sets window-size to smallest for the whole server: with the
// default, latest, a new window takes the size of whichever client was
// active last, in any session, rather than the size asked for (-x, -y);
// with smallest, only the session's own clients count (none yet), and
// afterwards the window follows the client's terminal, which Resize sets.
// (manual would do too, but crashes tmux 3.3a.) This is one reason the
// plugin wants a tmux server of its own.
//
// It sets no hooks: a hook's command that fails (say, on a session killed
// meanwhile) has its error shown in the next client that attaches, on
// whatever session.
func newSessionArgs(name, dir string, size shared.Size, env map[string]string, argv, unset []string) []string {
	t := target(name)
	args := []string{
		"new-session", "-d", "-P", "-F", "#{pane_pid}", "-s", name,
		"-x", strconv.Itoa(int(size.Cols)), "-y", strconv.Itoa(int(size.Rows)),
		// -c is format-expanded: a literal # is ##.
		"-c", arg(strings.ReplaceAll(dir, "#", "##")),
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		args = append(args, "-e", arg(k+"="+env[k]))
	}
	args = append(args, "--")
	if len(argv) == 1 {
		// tmux runs a single argument as a shell command line; run it as a
		// program instead, whatever characters its path holds.
		argv = []string{"/bin/sh", "-c", `exec "$0"`, argv[0]}
	}
	for _, a := range argv {
		args = append(args, arg(a))
	}
	for _, k := range unset {
		// Nor the windows and panes opened in the session later (C-b c),
		// which env -u does not reach.
		args = append(args, ";", "set-environment", "-t", t, "-r", "--", arg(k))
	}
	return append(args,
		";", "set-option", "-g", "-w", "window-size", "smallest",
		";", "set-option", "-w", "-t", t, "remain-on-exit", "on",
		// No "Pane is dead" line, which would scroll the last output up
		// (tmux 3.3; older versions ignore the option, and show it).
		";", "set-option", "-q", "-w", "-t", t, "remain-on-exit-format", "",
		";", "set-option", "-t", t, "status", "off",
		";", "set-option", "-t", t, "destroy-unattached", "off",
	)
}

// releaseArgs is the tmux command list that hands a session over to tmux
// when ptyhost lets go of it but keeps it: the plugin's options are
// undone, so that the session ends when its command does, as any tmux
// session; a pane that died meanwhile ends it at once.
func releaseArgs(name string) []string {
	t := target(name)
	return []string{
		"set-option", "-w", "-u", "-t", t, "remain-on-exit",
		";", "set-option", "-q", "-w", "-u", "-t", t, "remain-on-exit-format",
		";", "set-option", "-u", "-t", t, "status",
		";", "if-shell", "-F", "-t", t, "#{pane_dead}", "kill-session -t " + t,
	}
}

// checkType rejects environment types other than TMUX. Empty is TMUX.
func checkType(envType string) error {
	if envType != "" && envType != EnvironmentType {
		return fmt.Errorf("%w: environment type %q is not %s", shared.ErrInvalidArgument, envType, EnvironmentType)
	}
	return nil
}

// namePattern is what a tmux session name may be here: it also appears in
// command strings that tmux parses (if-shell's), so nothing there needs
// quoting.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// sessionName returns the tmux session name for a ptyhost session id. Like
// tmux itself, it turns "." and ":" (target separators) into "_".
func sessionName(id string) (string, error) {
	name := strings.NewReplacer(".", "_", ":", "_").Replace(id)
	if !namePattern.MatchString(name) {
		return "", fmt.Errorf("%w: session id %q: a tmux session name here is 1 to 128 letters, digits, '-', '_' or '.'", shared.ErrInvalidArgument, id)
	}
	return name, nil
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

// tmuxEnviron returns environ without the plugin's own variables
// (shared.IsPluginEnv) and tmux's (TMUX, TMUX_PANE): neither tmux nor the
// sessions see them. A tmux server the plugin starts takes it as its
// global environment, which sessions inherit.
func tmuxEnviron(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if !shared.IsPluginEnv(k) && k != "TMUX" && k != "TMUX_PANE" {
			out = append(out, kv)
		}
	}
	return out
}
