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
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ptyhost/ptyhost/shared"
)

var (
	// ErrNoPlugin: no loaded plugin serves the environment type.
	ErrNoPlugin = errors.New("no plugin for environment type")
	// ErrPluginNotFound: no plugin by that name is loaded.
	ErrPluginNotFound = errors.New("plugin not found")
)

// PluginState is a plugin's state as List reports it.
type PluginState string

// Plugin states.
const (
	PluginStarting   PluginState = "starting"   // its process is being started
	PluginRunning    PluginState = "running"    // serving
	PluginRestarting PluginState = "restarting" // it died; the next attempt is at NextAttempt
	PluginFailed     PluginState = "failed"     // did not start, or crashed too often (circuit open); see Reason
	PluginRefused    PluginState = "refused"    // not started on purpose: checksum, protocol version or type clash; see Reason
	PluginStopped    PluginState = "stopped"    // stopped with the server (Close)
	PluginStatic     PluginState = "static"     // in-process, from StaticPlugins
)

// PluginStatus describes one plugin, for listings.
type PluginStatus struct {
	// Name is the plugin's name, from its executable ptyhost-plugin-NAME.
	Name string `json:"name"`
	// Version is the version the plugin reports.
	Version string `json:"version,omitempty"`
	Path    string `json:"path,omitempty"`
	// SHA256 is the executable's checksum at its last launch; Pinned says
	// the configuration pins it.
	SHA256       string      `json:"sha256,omitempty"`
	Pinned       bool        `json:"pinned,omitempty"`
	Builtin      bool        `json:"builtin,omitempty"`
	Types        []string    `json:"types"`
	Capabilities []string    `json:"capabilities"`
	State        PluginState `json:"state"`
	// Reason says why a plugin is restarting, failed or refused.
	Reason string `json:"reason,omitempty"`
	// Restarts counts the launches after the first, automatic or not.
	Restarts int `json:"restarts"`
	// NextAttempt is when a restarting plugin is started again.
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	// PID is the running plugin's process id.
	PID int `json:"pid,omitempty"`
}

// Plugins is the set of environment plugins: an environment type maps to
// the one plugin that serves it. Its methods are safe for concurrent use.
//
// The set of plugins is fixed at load time; their processes are not. Each
// plugin process is supervised by a goroutine of its own: when it dies, the
// sessions it served end (with reason plugin_crashed), and it is started
// again after an exponential backoff. Too many crashes in a window open the
// circuit: the plugin is failed until Restart. Meanwhile, and while it
// starts, Environment returns an error wrapping shared.ErrUnavailable.
type Plugins struct {
	opts    PluginOptions
	log     *slog.Logger
	plugins []*supervised // sorted by name; fixed after load

	ctx    context.Context // ends when Close begins
	cancel context.CancelFunc
	wg     sync.WaitGroup // the supervisors

	closeOnce sync.Once

	notifyMu sync.Mutex    // taken last, under any other lock
	notify   chan struct{} // closed and replaced at every state change; notifyMu protects it

	mu sync.Mutex
	// mu protects the following.
	byType map[string]*supervised
	closed bool
}

// LoadPlugins starts the plugins in opts.Dir — the built-in ones found
// there and every one named in opts.Plugins — asks each for its Info, and
// maps environment types to plugins. A plugin that fails to start or is
// refused (checksum, protocol version) is logged and listed as such; the
// others still load. Two plugins claiming one type is an error naming
// both, and then no plugin stays running. ctx bounds the loading only, not
// the plugins' lives: Close ends those.
func LoadPlugins(ctx context.Context, opts PluginOptions) (*Plugins, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	found, err := findPlugins(opts.Dir)
	if err != nil {
		return nil, err
	}
	p := newPlugins(opts)
	configured := make(map[string]PluginConfig, len(opts.Plugins))
	for _, c := range opts.Plugins {
		configured[c.Name] = c
	}
	names := map[string]bool{}
	for name := range configured {
		names[name] = true
	}
	for name, path := range found {
		if IsBuiltinPlugin(name) {
			names[name] = true
		} else if !names[name] {
			p.log.Info("plugin not started: not named in the configuration", "plugin", name, "path", path)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		c, ok := configured[name]
		if !ok {
			c = PluginConfig{Name: name}
		}
		p.plugins = append(p.plugins, newSupervised(p, c))
	}

	gens := make([]*generation, len(p.plugins))
	var wg sync.WaitGroup
	for i, s := range p.plugins {
		wg.Go(func() { gens[i], _ = s.launch(ctx, false) })
	}
	wg.Wait()

	for i, s := range p.plugins {
		g := gens[i]
		if g == nil {
			continue
		}
		if err := p.claim(s, g.info.Types); err != nil {
			for _, g := range gens {
				if g != nil {
					g.stop("")
				}
			}
			return nil, err
		}
		s.log.Info("plugin loaded", "version", g.info.Version, "types", g.info.Types, "pid", g.pid)
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(pluginsCollector{p}); err != nil {
			for _, g := range gens {
				if g != nil {
					g.stop("")
				}
			}
			return nil, fmt.Errorf("core: registering plugin metrics: %w", err)
		}
	}
	for i, s := range p.plugins {
		p.wg.Go(func() { s.run(p.ctx, gens[i]) })
	}
	return p, nil
}

func newPlugins(opts PluginOptions) *Plugins {
	ctx, cancel := context.WithCancel(context.Background())
	return &Plugins{opts: opts, log: opts.Logger, ctx: ctx, cancel: cancel, byType: make(map[string]*supervised), notify: make(chan struct{})}
}

// changes returns a channel closed at the next change of a plugin's state.
func (p *Plugins) changes() <-chan struct{} {
	p.notifyMu.Lock()
	defer p.notifyMu.Unlock()
	return p.notify
}

func (p *Plugins) changed() {
	p.notifyMu.Lock()
	close(p.notify)
	p.notify = make(chan struct{})
	p.notifyMu.Unlock()
}

// StaticPlugins returns a set of in-process environments keyed by the
// environment type they serve, for embedders and tests. Close does not close
// them.
func StaticPlugins(envs map[string]shared.Environment) *Plugins {
	p := newPlugins(PluginOptions{}.withDefaults())
	for _, typ := range slices.Sorted(maps.Keys(envs)) {
		s := newSupervised(p, PluginConfig{Name: typ})
		s.static = envs[typ]
		s.state, s.info = PluginStatic, shared.Info{Name: typ, Types: []string{typ}}
		p.plugins = append(p.plugins, s)
		p.byType[typ] = s
	}
	return p
}

// findPlugins maps the name of every plugin executable in dir
// (ptyhost-plugin-NAME) to its path.
func findPlugins(dir string) (map[string]string, error) {
	found := map[string]string{}
	if dir == "" {
		return found, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin dir: %w", err)
	}
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), PluginPrefix)
		if !ok || name == "" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if executable(path) != nil {
			continue
		}
		found[name] = path
	}
	return found, nil
}

// executable checks that path is an executable regular file (following
// symlinks).
func executable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%s is not executable", path)
	}
	return nil
}

// claim maps types to s, dropping the types s served before. A type
// another plugin serves is an error naming both.
func (p *Plugins) claim(s *supervised, types []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, typ := range types {
		if other, ok := p.byType[typ]; ok && other != s {
			return fmt.Errorf("environment type %q is claimed by two plugins: %s and %s", typ, other.describe(), s.describe())
		}
	}
	for typ, owner := range p.byType {
		if owner == s && !slices.Contains(types, typ) {
			delete(p.byType, typ)
		}
	}
	for _, typ := range types {
		p.byType[typ] = s
	}
	return nil
}

// Environment returns the environment that serves envType. An unknown type
// is an error wrapping ErrNoPlugin; a plugin that is not running now
// (starting, restarting, failed, refused) one wrapping
// shared.ErrUnavailable, and one after Close shared.ErrPluginExited. The
// result of a plugin process also implements shared.ConfigValidator and
// shared.HealthChecker (with health answers cached), and refuses to spawn
// in an environment whose last health check, within
// PluginOptions.HealthCacheTTL, found it unavailable.
func (p *Plugins) Environment(envType string) (shared.Environment, error) {
	p.mu.Lock()
	s, ok := p.byType[envType]
	closed := p.closed
	p.mu.Unlock()
	switch {
	case !ok:
		return nil, fmt.Errorf("%w %q", ErrNoPlugin, envType)
	case s.static != nil:
		return s.static, nil
	case closed:
		return nil, fmt.Errorf("plugin %s: %w", s.name, shared.ErrPluginExited)
	}
	return s.environment()
}

// Types returns the served environment types, sorted.
func (p *Plugins) Types() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Sorted(maps.Keys(p.byType))
}

// List describes every plugin, running or not, sorted by name.
func (p *Plugins) List() []PluginStatus {
	list := make([]PluginStatus, 0, len(p.plugins))
	for _, s := range p.plugins {
		list = append(list, s.status())
	}
	return list
}

// Plugin describes the plugin name, or returns an error wrapping
// ErrPluginNotFound.
func (p *Plugins) Plugin(name string) (PluginStatus, error) {
	s, err := p.find(name)
	if err != nil {
		return PluginStatus{}, err
	}
	return s.status(), nil
}

func (p *Plugins) find(name string) (*supervised, error) {
	for _, s := range p.plugins {
		if s.name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrPluginNotFound, name)
}

// Restart stops the plugin name if it runs — its sessions end with reason
// plugin_restarted — closes its circuit, and starts it again. It returns
// the plugin's status once the start succeeded or failed; if ctx ends
// first, the restart goes on and the status says starting. An unknown name
// wraps ErrPluginNotFound; an in-process plugin cannot be restarted
// (ErrInvalidArgument).
func (p *Plugins) Restart(ctx context.Context, name string) (PluginStatus, error) {
	s, err := p.find(name)
	if err != nil {
		return PluginStatus{}, err
	}
	if s.static != nil {
		return PluginStatus{}, fmt.Errorf("%w: plugin %s runs in-process and cannot be restarted", ErrInvalidArgument, name)
	}
	reply := make(chan PluginStatus, 1)
	select {
	case s.restartC <- reply:
	case <-p.ctx.Done():
		return PluginStatus{}, fmt.Errorf("plugin %s: %w: the plugins are stopping", name, shared.ErrUnavailable)
	case <-ctx.Done():
		return PluginStatus{}, ctx.Err()
	}
	select {
	case st := <-reply:
		return st, nil
	case <-ctx.Done():
		return s.status(), nil
	}
}

// Close stops every plugin process and waits for them to exit, and for
// their supervisors. Sessions still open in a plugin are killed by it as it
// stops. Close is idempotent.
func (p *Plugins) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		p.wg.Wait()
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
