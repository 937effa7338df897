package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

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
// plugin process is started, and supervised, by a goroutine of its own, so
// a plugin that is slow to start holds up nothing else. When a process
// dies — as learnt from the process itself, not from its output pipes —
// the sessions it served end (with reason plugin_crashed), and it is
// started again after an exponential backoff. Too many crashes in a window
// open the circuit: the plugin is failed until Restart. Meanwhile, and
// while it starts, Environment returns an error wrapping
// shared.ErrUnavailable.
type Plugins struct {
	opts    PluginOptions
	log     *slog.Logger
	plugins []*supervised // sorted by name; fixed after load
	sock    *socketDir    // nil for StaticPlugins

	ctx    context.Context // ends when Close begins
	cancel context.CancelFunc
	wg     sync.WaitGroup // the supervisors

	closeOnce sync.Once

	notifyMu sync.Mutex    // taken last, under any other lock
	notify   chan struct{} // closed and replaced at every state change; notifyMu protects it

	started chan struct{} // closed when every plugin's first launch has ended

	mu sync.Mutex
	// mu protects the following.
	byType   map[string]*supervised
	closed   bool
	pending  int             // plugins whose first launch has not ended
	stopping context.Context // Shutdown's ctx, once it is called
}

// LoadPlugins finds the plugins in opts.Dir — the built-in ones found there
// and every one named in opts.Plugins — and starts them in the background:
// it returns before they run. Each is asked for its Info once started, and
// its environment types are mapped to it then; Started tells when every
// first start has ended, WaitType when a type is served. A plugin that
// fails to start or is refused (checksum, protocol version, a type another
// plugin already serves) is logged and listed as such; the others still
// load. ctx is not used after LoadPlugins returns: Close ends the plugins.
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
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(pluginsCollector{p}); err != nil {
			return nil, fmt.Errorf("core: registering plugin metrics: %w", err)
		}
	}
	if len(p.plugins) > 0 {
		if p.sock, err = openSocketDir(opts.SocketDir); err != nil {
			if opts.Registerer != nil {
				opts.Registerer.Unregister(pluginsCollector{p})
			}
			return nil, err
		}
	}
	p.pending = len(p.plugins)
	if p.pending == 0 {
		close(p.started)
	}
	for _, s := range p.plugins {
		p.wg.Go(func() { s.run(p.ctx) })
	}
	return p, nil
}

func newPlugins(opts PluginOptions) *Plugins {
	ctx, cancel := context.WithCancel(context.Background())
	return &Plugins{opts: opts, log: opts.Logger, ctx: ctx, cancel: cancel, byType: make(map[string]*supervised),
		notify: make(chan struct{}), started: make(chan struct{})}
}

// launched records the end of a plugin's first launch.
func (p *Plugins) launched() {
	p.mu.Lock()
	p.pending--
	done := p.pending == 0
	p.mu.Unlock()
	if done {
		close(p.started)
	}
	p.changed()
}

// Started returns a channel that is closed once every plugin's first start
// has ended: each is running, failed or refused (or stopped by Close).
func (p *Plugins) Started() <-chan struct{} { return p.started }

// WaitType waits until a running plugin serves envType, and returns nil.
// It returns Environment's error once that is not passing: no plugin
// serves the type and every first start has ended (ErrNoPlugin), or the
// plugin that serves it failed or was refused; or ctx's error.
func (p *Plugins) WaitType(ctx context.Context, envType string) error {
	for {
		changed := p.changes()
		_, err := p.Environment(envType)
		if err == nil || !p.transient(envType) {
			return err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// transient reports whether envType may yet be served without an
// operator's help: its plugin is starting or restarting, or it has no
// plugin while some plugin's first start has not ended.
func (p *Plugins) transient(envType string) bool {
	p.mu.Lock()
	s, ok := p.byType[envType]
	pending, closed := p.pending, p.closed
	p.mu.Unlock()
	switch {
	case closed:
		return false
	case !ok:
		return pending > 0
	}
	st := s.status().State
	return st == PluginStarting || st == PluginRestarting
}

// starting names the plugins whose first start has not ended.
func (p *Plugins) starting() []string {
	var names []string
	for _, s := range p.plugins {
		s.mu.Lock()
		if s.state == PluginStarting && len(s.info.Types) == 0 && s.static == nil {
			names = append(names, s.name)
		}
		s.mu.Unlock()
	}
	return names
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
	close(p.started)
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
// is an error wrapping ErrNoPlugin, unless a plugin whose types are not
// known yet is starting: then, and for a plugin that is not running now
// (starting, restarting, failed, refused), the error wraps
// shared.ErrUnavailable; after Close it wraps shared.ErrPluginExited. The
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
	case !ok && !closed:
		if names := p.starting(); len(names) > 0 {
			return nil, fmt.Errorf("%w: no plugin serves environment type %q yet; still starting: %s",
				shared.ErrUnavailable, envType, strings.Join(names, ", "))
		}
		return nil, fmt.Errorf("%w %q", ErrNoPlugin, envType)
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
// their supervisors: it is Shutdown without a deadline.
func (p *Plugins) Close() { p.Shutdown(context.Background()) }

// Shutdown stops every plugin process and waits for them to exit, and for
// their supervisors. Each plugin is asked to stop — it kills the sessions
// still open in it — and its process group is killed when it has not
// exited after a grace period (2 s), or at once when ctx ends. A plugin
// still starting is killed at once. Shutdown returns within about half a
// second of the last kill, whatever the plugins' children do. Only the
// first call of Shutdown or Close does anything; later ones return at
// once, or wait for the first to finish.
func (p *Plugins) Shutdown(ctx context.Context) {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.stopping = ctx
		p.mu.Unlock()
		p.cancel()
		p.wg.Wait()
		if p.sock != nil {
			p.sock.close()
		}
	})
}

// stopContext returns Shutdown's ctx.
func (p *Plugins) stopContext() context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping == nil {
		return context.Background()
	}
	return p.stopping
}
