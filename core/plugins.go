package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/ptyhost/ptyhost/shared"
)

// PluginPrefix starts the file name of every plugin executable.
const PluginPrefix = "ptyhost-plugin-"

// ErrNoPlugin: no loaded plugin serves the environment type.
var ErrNoPlugin = errors.New("no plugin for environment type")

// PluginOptions configures LoadPlugins. The zero value loads nothing.
type PluginOptions struct {
	// Dir is scanned (not recursively) for executables named
	// ptyhost-plugin-*. Empty means no plugins.
	Dir string
	// Logger receives the loader's log and each plugin's log (its hclog
	// lines on stderr), with a "plugin" attribute. Nil discards.
	Logger *slog.Logger
	// StartTimeout bounds a plugin's start-up handshake. Zero means
	// go-plugin's default (one minute).
	StartTimeout time.Duration
}

// PluginState is a plugin's state as List reports it.
type PluginState string

// Plugin states.
const (
	PluginRunning PluginState = "running" // serving
	PluginExited  PluginState = "exited"  // its process is gone
	PluginFailed  PluginState = "failed"  // did not start; see Error
	PluginStatic  PluginState = "static"  // in-process, from StaticPlugins
)

// PluginStatus describes one plugin, for listings.
type PluginStatus struct {
	Name         string      `json:"name"`
	Version      string      `json:"version,omitempty"`
	Path         string      `json:"path,omitempty"`
	Types        []string    `json:"types"`
	Capabilities []string    `json:"capabilities"`
	State        PluginState `json:"state"`
	// Error says why a failed plugin did not load.
	Error string `json:"error,omitempty"`
}

// Plugins is the set of loaded environment plugins: an environment type
// maps to the one plugin that serves it. Its methods are safe for
// concurrent use. The set is fixed at load time; a plugin process that dies
// stays in the set as exited, and calls to it fail with an error wrapping
// shared.ErrPluginExited.
type Plugins struct {
	plugins []*loadedPlugin // sorted by name; fixed after load
	byType  map[string]*loadedPlugin

	closeOnce sync.Once
	mu        sync.Mutex
	// mu protects the following.
	closed bool
}

// loadedPlugin is one plugin, running, failed or static.
type loadedPlugin struct {
	name   string
	path   string
	info   shared.Info
	env    shared.Environment
	client *plugin.Client // nil for static and failed plugins
	err    error          // why it failed
}

// LoadPlugins starts every plugin executable in opts.Dir, asks each for its
// Info, and maps environment types to plugins. A plugin that fails to start
// is logged and listed as failed; the others still load. Two plugins
// claiming one type is an error naming both, and then no plugin stays
// running. ctx bounds the loading only, not the plugins' lives: Close ends
// those.
func LoadPlugins(ctx context.Context, opts PluginOptions) (*Plugins, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	paths, err := findPlugins(opts.Dir)
	if err != nil {
		return nil, err
	}
	loaded := make([]*loadedPlugin, len(paths))
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Go(func() { loaded[i] = startPlugin(ctx, path, opts, logger) })
	}
	wg.Wait()

	p := &Plugins{plugins: loaded, byType: make(map[string]*loadedPlugin)}
	for _, lp := range loaded {
		if lp.err != nil {
			logger.Warn("plugin skipped", "plugin", lp.name, "path", lp.path, "error", lp.err)
			continue
		}
		for _, typ := range lp.info.Types {
			if other, dup := p.byType[typ]; dup {
				p.Close()
				return nil, fmt.Errorf("environment type %q is claimed by two plugins: %s and %s", typ, other.path, lp.path)
			}
			p.byType[typ] = lp
		}
		logger.Info("plugin loaded", "plugin", lp.name, "version", lp.info.Version, "types", lp.info.Types)
	}
	return p, nil
}

// StaticPlugins returns a set of in-process environments keyed by the
// environment type they serve, for embedders and tests. Close does not close
// them.
func StaticPlugins(envs map[string]shared.Environment) *Plugins {
	p := &Plugins{byType: make(map[string]*loadedPlugin)}
	for _, typ := range slices.Sorted(maps.Keys(envs)) {
		lp := &loadedPlugin{name: typ, env: envs[typ], info: shared.Info{Name: typ, Types: []string{typ}}}
		p.plugins = append(p.plugins, lp)
		p.byType[typ] = lp
	}
	return p
}

// findPlugins lists the plugin executables in dir, sorted.
func findPlugins(dir string) ([]string, error) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin dir: %w", err)
	}
	var paths []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), PluginPrefix) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fi, err := os.Stat(path) // follows symlinks
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// startPlugin starts one plugin process and asks for its Info. Failures are
// recorded in the result, with the process killed.
func startPlugin(ctx context.Context, path string, opts PluginOptions, logger *slog.Logger) *loadedPlugin {
	name := filepath.Base(path)
	lp := &loadedPlugin{name: name, path: path}
	cmd := exec.Command(path)
	cmd.Env = pluginEnviron(os.Environ())
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		VersionedPlugins: shared.VersionedPlugins(nil),
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     opts.StartTimeout,
		Logger:           newHCLogger(logger.With("plugin", name), ""),
	})
	env, info, err := dispense(ctx, client)
	if err != nil {
		client.Kill()
		lp.err = err
		return lp
	}
	lp.client, lp.env, lp.info = client, env, info
	return lp
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

// dispense connects to a started plugin and asks for its Info.
func dispense(ctx context.Context, client *plugin.Client) (shared.Environment, shared.Info, error) {
	rpc, err := client.Client()
	if err != nil {
		return nil, shared.Info{}, err
	}
	raw, err := rpc.Dispense(shared.PluginName)
	if err != nil {
		return nil, shared.Info{}, err
	}
	env, ok := raw.(shared.Environment)
	if !ok {
		return nil, shared.Info{}, fmt.Errorf("plugin dispensed %T, not a shared.Environment", raw)
	}
	info, err := env.Info(ctx)
	if err != nil {
		return nil, shared.Info{}, fmt.Errorf("info: %w", err)
	}
	if len(info.Types) == 0 {
		return nil, shared.Info{}, errors.New("plugin serves no environment type")
	}
	return env, info, nil
}

// Environment returns the environment that serves envType. An unknown type
// is an error wrapping ErrNoPlugin. The result also implements
// shared.ConfigValidator and shared.HealthChecker when it comes from a
// plugin process; Info's capabilities say whether the plugin supports them.
func (p *Plugins) Environment(envType string) (shared.Environment, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	lp, ok := p.byType[envType]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w %q", ErrNoPlugin, envType)
	case closed && lp.client != nil:
		return nil, fmt.Errorf("plugin %s: %w", lp.name, shared.ErrPluginExited)
	}
	return lp.env, nil
}

// Types returns the served environment types, sorted.
func (p *Plugins) Types() []string {
	return slices.Sorted(maps.Keys(p.byType))
}

// List describes every plugin found, loaded or not, sorted by name.
func (p *Plugins) List() []PluginStatus {
	list := make([]PluginStatus, 0, len(p.plugins))
	for _, lp := range p.plugins {
		st := PluginStatus{
			Name:         lp.info.Name,
			Version:      lp.info.Version,
			Path:         lp.path,
			Types:        slices.Clone(lp.info.Types),
			Capabilities: slices.Clone(lp.info.Capabilities),
		}
		switch {
		case lp.err != nil:
			st.Name, st.State, st.Error = lp.name, PluginFailed, lp.err.Error()
		case lp.client == nil:
			st.State = PluginStatic
		case lp.client.Exited():
			st.State = PluginExited
		default:
			st.State = PluginRunning
		}
		list = append(list, st)
	}
	return list
}

// Close stops every plugin process and waits for them to exit. Sessions
// still open in a plugin are killed by it as it stops. Close is idempotent.
func (p *Plugins) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		var wg sync.WaitGroup
		for _, lp := range p.plugins {
			if lp.client != nil {
				wg.Go(lp.client.Kill)
			}
		}
		wg.Wait()
	})
}

// hcLogger is an hclog.Logger that logs to a *slog.Logger: go-plugin logs
// through it, including every line a plugin writes to stderr.
type hcLogger struct {
	l    *slog.Logger
	name string
	args []any // from With
}

var _ hclog.Logger = (*hcLogger)(nil)

func newHCLogger(l *slog.Logger, name string) *hcLogger {
	return &hcLogger{l: l, name: name}
}

// slogLevel maps an hclog level to slog; slog has no trace, so it is below
// debug.
func slogLevel(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (h *hcLogger) Log(level hclog.Level, msg string, args ...any) {
	sl := slogLevel(level)
	ctx := context.Background()
	if !h.l.Enabled(ctx, sl) {
		return
	}
	attrs := make([]any, 0, len(h.args)+len(args)+2)
	if h.name != "" {
		attrs = append(attrs, "logger", h.name)
	}
	attrs = append(attrs, h.args...)
	for i := 0; i < len(args); i += 2 {
		// go-plugin adds the plugin's own timestamp; slog has its own.
		if k, _ := args[i].(string); k == "timestamp" && i+1 < len(args) {
			continue
		}
		attrs = append(attrs, args[i:min(i+2, len(args))]...)
	}
	h.l.Log(ctx, sl, msg, attrs...)
}

func (h *hcLogger) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hcLogger) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hcLogger) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hcLogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hcLogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hcLogger) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *hcLogger) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *hcLogger) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *hcLogger) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *hcLogger) IsError() bool { return h.enabled(hclog.Error) }

func (h *hcLogger) enabled(level hclog.Level) bool {
	return h.l.Enabled(context.Background(), slogLevel(level))
}

func (h *hcLogger) ImpliedArgs() []any { return slices.Clone(h.args) }

func (h *hcLogger) With(args ...any) hclog.Logger {
	return &hcLogger{l: h.l, name: h.name, args: append(slices.Clone(h.args), args...)}
}

func (h *hcLogger) Name() string { return h.name }

func (h *hcLogger) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.ResetNamed(name)
}

func (h *hcLogger) ResetNamed(name string) hclog.Logger {
	return &hcLogger{l: h.l, name: name, args: h.args}
}

// SetLevel does nothing: the slog handler decides.
func (h *hcLogger) SetLevel(hclog.Level) {}

// GetLevel returns the lowest level the slog handler takes. go-plugin uses
// it to skip parsing plugin log lines nobody will see.
func (h *hcLogger) GetLevel() hclog.Level {
	for _, level := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if h.enabled(level) {
			return level
		}
	}
	return hclog.Off
}

func (h *hcLogger) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(h.l.Handler(), slog.LevelInfo)
}

func (h *hcLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return h.StandardLogger(opts).Writer()
}
