package pluginhost

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/shared"
)

// ExecutablePrefix starts the file name of every plugin executable.
const ExecutablePrefix = "ptyhost-plugin-"

// builtinPlugins are the plugins ptyhost ships: started from the plugin
// directory whenever they are there, named in the configuration or not.
var builtinPlugins = [...]string{"docker", "host", "ssh"}

// IsBuiltin reports whether name is one of the plugins ptyhost ships
// (docker, host, ssh).
func IsBuiltin(name string) bool { return slices.Contains(builtinPlugins[:], name) }

// Options configures Load. The zero value loads nothing; the
// zero value of every other field means its default.
type Options struct {
	// Dir is the plugin directory. The built-in plugins found there are
	// started, and so is every plugin named in Plugins; any other
	// ptyhost-plugin-* executable there is left alone (and logged). Empty
	// means no plugins.
	Dir string
	// Plugins names the third-party plugins to start, and configures
	// built-in ones (to pin them or pass them variables).
	Plugins []Config
	// Logger receives the loader's log and each plugin's log (its hclog
	// lines on stderr), with a "plugin" attribute. Nil discards.
	Logger *slog.Logger
	// Registerer, when set, receives the plugins' Prometheus metrics.
	Registerer prometheus.Registerer
	// StartTimeout bounds a plugin's start: its handshake and its answer
	// to Info. A plugin that has not answered by then is killed and
	// failed. Default one minute. Plugins start in the background, so a
	// slow one holds up only its own environment types.
	StartTimeout time.Duration
	// SocketDir is the directory the plugins' go-plugin Unix sockets are
	// made in: created if missing, made private (0700), and cleared of the
	// sockets a killed server left there whenever no other loader uses it.
	// The reattach records of the plugin processes that may outlive the
	// server (see Plugins.Detach) are kept there too, and a later Load on
	// the same directory reattaches to them. Its path must be at most 90
	// bytes long. Empty means a new private directory in os.TempDir(),
	// removed by Close (and, if the process is killed first, by the next
	// Load with an empty SocketDir), and plugin processes that never
	// outlive the server; ptyhost serve uses DATA_DIR/run.
	SocketDir string

	// RestartBackoff is the delay before the first restart of a plugin
	// that died; it doubles with every crash in CrashWindow, up to
	// MaxRestartBackoff. Defaults 100 ms and 30 s.
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
	// CrashLimit crashes within CrashWindow open the circuit: the plugin is
	// marked failed and not restarted until Restart is called. Defaults 5
	// and one minute; a negative CrashLimit never opens the circuit.
	CrashLimit  int
	CrashWindow time.Duration

	// HealthTimeout bounds one health check of an environment; default
	// 2 s. HealthCacheTTL is how long its answer is reused, by listings
	// and by session creation alike; default 5 s.
	HealthTimeout  time.Duration
	HealthCacheTTL time.Duration

	// OrphanTimeout is how long a plugin process keeps its sessions
	// running once no server holds it (the server died, or left with
	// Detach): a server that comes back within it reattaches to the
	// process and takes its sessions up again; after it, the plugin hangs
	// every session up and exits. Default 10 minutes. Only plugins whose
	// sockets are in SocketDir outlive their server (see Plugins.Detach).
	OrphanTimeout time.Duration
}

// Supervision and health defaults.
const (
	DefaultRestartBackoff    = 100 * time.Millisecond
	DefaultMaxRestartBackoff = 30 * time.Second
	DefaultCrashLimit        = 5
	DefaultCrashWindow       = time.Minute
	DefaultHealthTimeout     = core.DefaultHealthTimeout
	DefaultHealthCacheTTL    = 5 * time.Second
	DefaultStartTimeout      = time.Minute
	DefaultOrphanTimeout     = 10 * time.Minute
)

// Config configures one plugin, by name.
type Config struct {
	// Name selects the executable Dir/ptyhost-plugin-NAME: letters,
	// digits, '.', '_' and '-', starting with a letter or digit.
	Name string
	// SHA256, when set, pins the executable: its SHA-256 in hex (64
	// digits), checked at every launch. A mismatch refuses the plugin.
	SHA256 string
	// Env is added to a built-in plugin's environment (the server's own,
	// without PTYHOST_* variables but PTYHOST_PLUGIN_LOG_LEVEL), and is
	// the whole environment of a third-party plugin besides the plugin
	// protocol's own variables and, when Env does not set it, the
	// server's PTYHOST_PLUGIN_LOG_LEVEL.
	Env map[string]string
	// Args are the executable's arguments.
	Args []string
}

var pluginNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Validate reports what is wrong with c.
func (c Config) Validate() error {
	if !pluginNamePattern.MatchString(c.Name) {
		return fmt.Errorf("plugin name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", c.Name)
	}
	if c.SHA256 != "" {
		if b, err := hex.DecodeString(c.SHA256); err != nil || len(b) != 32 {
			return fmt.Errorf("plugin %s: sha256 %q: want 64 hex digits, as printed by sha256sum", c.Name, c.SHA256)
		}
	}
	// An exec fails on NUL in the environment or the arguments, and only
	// when the plugin launches: say so here, where the configuration is.
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("plugin %s: env name %q: want a non-empty name without '=' or NUL", c.Name, k)
		}
		if i := strings.IndexByte(c.Env[k], 0); i >= 0 {
			// Not the value: a plugin's env often holds a secret.
			return fmt.Errorf("plugin %s: env %s: its value contains NUL (at byte %d)", c.Name, k, i)
		}
	}
	// The plugin would log at info; refuse it where the configuration is.
	if _, err := shared.ParseLogLevel(c.Env[shared.LogLevelEnv]); err != nil {
		return fmt.Errorf("plugin %s: env %s: %v", c.Name, shared.LogLevelEnv, err)
	}
	for i, a := range c.Args {
		if strings.ContainsRune(a, 0) {
			return fmt.Errorf("plugin %s: args[%d] %q contains NUL", c.Name, i, a)
		}
	}
	return nil
}

// Validate reports the first invalid field.
func (o Options) Validate() error {
	seen := map[string]bool{}
	for _, c := range o.Plugins {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("pluginhost: Options.Plugins: %w", err)
		}
		if seen[c.Name] {
			return fmt.Errorf("pluginhost: Options.Plugins: plugin %s is configured twice", c.Name)
		}
		seen[c.Name] = true
	}
	switch {
	case len(o.Plugins) > 0 && o.Dir == "":
		return fmt.Errorf("pluginhost: Options.Dir is required to start the plugins named in Plugins")
	case len(o.SocketDir) > maxSocketDirLen:
		return fmt.Errorf("pluginhost: Options.SocketDir %s is %d bytes long; a Unix socket in it needs it at most %d", o.SocketDir, len(o.SocketDir), maxSocketDirLen)
	case o.StartTimeout < 0, o.RestartBackoff < 0, o.MaxRestartBackoff < 0, o.CrashWindow < 0,
		o.HealthTimeout < 0, o.HealthCacheTTL < 0, o.OrphanTimeout < 0:
		return fmt.Errorf("pluginhost: Options durations must not be negative")
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.RestartBackoff == 0 {
		o.RestartBackoff = DefaultRestartBackoff
	}
	if o.MaxRestartBackoff == 0 {
		o.MaxRestartBackoff = DefaultMaxRestartBackoff
	}
	o.MaxRestartBackoff = max(o.MaxRestartBackoff, o.RestartBackoff)
	if o.CrashLimit == 0 {
		o.CrashLimit = DefaultCrashLimit
	}
	if o.CrashWindow == 0 {
		o.CrashWindow = DefaultCrashWindow
	}
	if o.HealthTimeout == 0 {
		o.HealthTimeout = DefaultHealthTimeout
	}
	if o.HealthCacheTTL == 0 {
		o.HealthCacheTTL = DefaultHealthCacheTTL
	}
	if o.OrphanTimeout == 0 {
		o.OrphanTimeout = DefaultOrphanTimeout
	}
	return o
}

// backoff is the delay before the restart that follows the n-th crash in
// the window (n >= 1): base, 2·base, 4·base, … at most most.
func backoff(base, most time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < most; i++ {
		d *= 2
	}
	return min(d, most)
}

// pluginEnviron is the server's environment without its own settings
// (PTYHOST_*, which include the API token and the database DSN), so that no
// plugin — and no session a plugin starts — sees the server's secrets. The
// plugins' log level passes.
func pluginEnviron(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if strings.HasPrefix(kv, "PTYHOST_") && !strings.HasPrefix(kv, shared.LogLevelEnv+"=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// environ is the environment a plugin starts with, before go-plugin adds
// its own variables (the handshake cookie, PLUGIN_*): for a built-in, the
// server's environment without PTYHOST_* plus c.Env; for a third-party
// plugin, c.Env alone, plus the plugins' log level when the server has one
// and c.Env does not set it.
func (c Config) environ(builtin bool, server []string) []string {
	env := []string{}
	if builtin {
		env = pluginEnviron(server)
	} else if _, ok := c.Env[shared.LogLevelEnv]; !ok {
		for _, kv := range server {
			if strings.HasPrefix(kv, shared.LogLevelEnv+"=") {
				env = append(env, kv)
			}
		}
	}
	// Later entries win in exec, so the block's variables override.
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		env = append(env, k+"="+c.Env[k])
	}
	return env
}
