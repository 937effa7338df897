package pluginhost

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/shared"
)

var (
	_ core.Dispatcher       = (*Plugins)(nil)
	_ core.PluginController = (*Plugins)(nil)
	_ core.SurvivorSource   = (*Plugins)(nil)
)

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
	opts    Options
	log     *slog.Logger
	plugins []*supervised // sorted by name; fixed after load
	sock    *socketDir    // nil when there are no plugins
	// durable: the generations may outlive the server (see reattach.go):
	// the socket directory is Options.SocketDir, and this Plugins owns it.
	durable bool

	ctx    context.Context // ends when Close begins
	cancel context.CancelFunc
	wg     sync.WaitGroup // the supervisors, and the relays of reattached plugins' logs (followLog)

	closeOnce sync.Once

	notifyMu sync.Mutex    // taken last, under any other lock
	notify   chan struct{} // closed and replaced at every state change; notifyMu protects it

	started chan struct{} // closed when every plugin's first launch has ended

	mu sync.Mutex
	// mu protects the following.
	byType   map[string]*supervised
	closed   bool
	pending  int             // plugins whose first launch has not ended
	stopping context.Context // Shutdown's or Detach's ctx, once it is called
	leaving  bool            // Detach was called: durable processes stay
}

// Load finds the plugins in opts.Dir — the built-in ones found there
// and every one named in opts.Plugins — and starts them in the background:
// it returns before they run. Each is asked for its Info once started, and
// its environment types are mapped to it then; Started tells when every
// first start has ended, WaitType when a type is served. A plugin that
// fails to start or is refused (checksum, protocol version, a type another
// plugin already serves, a built-in plugin's type) is logged and listed as such; the others still
// load. ctx is not used after Load returns: Close ends the plugins.
//
// Before it returns, Load reattaches to the plugin processes a previous
// server on the same SocketDir left running (Detach, or a server that
// died), in parallel, each within a few seconds: a plugin reattached to
// is running at once, with the sessions it kept (Survivors); one that
// cannot be is launched anew. If ctx ends meanwhile, Load lets go of what
// it reattached to, keeps every record, and returns ctx's error.
func Load(ctx context.Context, opts Options) (*Plugins, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if opts.Dir != "" {
		// A relative Dir such as "." would make a plugin's path a bare
		// name, which exec looks up in $PATH.
		dir, err := filepath.Abs(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("pluginhost: the plugin directory: %w", err)
		}
		opts.Dir = dir
	}
	found, err := findPlugins(opts.Dir)
	if err != nil {
		return nil, err
	}
	p := newPlugins(opts)
	configured := make(map[string]Config, len(opts.Plugins))
	for _, c := range opts.Plugins {
		configured[c.Name] = c
	}
	names := map[string]bool{}
	for name := range configured {
		names[name] = true
	}
	for name, path := range found {
		if IsBuiltin(name) {
			names[name] = true
		} else if !names[name] {
			p.log.Info("plugin not started: not named in the configuration", "plugin", name, "path", path)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		c, ok := configured[name]
		if !ok {
			c = Config{Name: name}
		}
		p.plugins = append(p.plugins, newSupervised(p, c))
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(pluginsCollector{p}); err != nil {
			return nil, fmt.Errorf("pluginhost: registering plugin metrics: %w", err)
		}
	}
	if len(p.plugins) > 0 {
		if p.sock, err = openSocketDir(opts.SocketDir); err != nil {
			if opts.Registerer != nil {
				opts.Registerer.Unregister(pluginsCollector{p})
			}
			return nil, err
		}
		p.durable = !p.sock.temp && p.canKeepProcesses()
	}
	p.reattachAll(ctx)
	if err := ctx.Err(); err != nil {
		// Stopped while reattaching: what was reattached to is let go
		// and every record kept, for the next server. Launching now
		// would put a fresh process's record over the one of a process
		// whose reattach was cut short, and lose its sessions.
		for _, s := range p.plugins {
			if s.adopted != nil {
				s.adopted.detach()
			}
		}
		if p.sock != nil {
			p.sock.close()
		}
		if opts.Registerer != nil {
			opts.Registerer.Unregister(pluginsCollector{p})
		}
		return nil, fmt.Errorf("pluginhost: stopped while reattaching to the plugins: %w", err)
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

func newPlugins(opts Options) *Plugins {
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
// serves the type and every first start has ended (core.ErrNoPlugin), or the
// plugin that serves it failed or was refused; or ctx's error.
func (p *Plugins) WaitType(ctx context.Context, envType string) error {
	for {
		changed := p.changes()
		_, err := p.Environment(envType)
		if err == nil {
			return nil
		}
		testHookWaitTypeLooked()
		if !p.transient(envType) {
			// A plugin's start may have ended between the two looks:
			// Environment's error is stale then, so look again.
			select {
			case <-changed:
				continue
			default:
				return err
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// testHookEnvironmentLooked runs in Environment between its look at the
// types served and its look at the plugins still starting.
var testHookEnvironmentLooked = func() {}

// testHookWaitTypeLooked runs in WaitType between its look at the
// environment and its look at the plugins' states.
var testHookWaitTypeLooked = func() {}

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
	return st == core.PluginStarting || st == core.PluginRestarting
}

// starting names the plugins whose first start has not ended.
func (p *Plugins) starting() []string {
	var names []string
	for _, s := range p.plugins {
		s.mu.Lock()
		if s.state == core.PluginStarting && len(s.info.Types) == 0 {
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

// Environment returns the environment that serves envType. An unknown type
// is an error wrapping core.ErrNoPlugin, unless a plugin whose types are not
// known yet is starting: then, and for a plugin that is not running now
// (starting, restarting, failed, refused), the error wraps
// shared.ErrUnavailable; after Close it wraps shared.ErrPluginExited. The
// result of a plugin process also implements shared.ConfigValidator and
// shared.HealthChecker (with health answers cached), and refuses to spawn
// in an environment whose last health check, within
// Options.HealthCacheTTL, found it unavailable.
func (p *Plugins) Environment(envType string) (shared.Environment, error) {
	p.mu.Lock()
	s, ok := p.byType[envType]
	closed := p.closed
	p.mu.Unlock()
	if !ok && !closed {
		testHookEnvironmentLooked()
		if names := p.starting(); len(names) > 0 {
			return nil, fmt.Errorf("%w: no plugin serves environment type %q yet; still starting: %s",
				shared.ErrUnavailable, envType, strings.Join(names, ", "))
		}
		// A plugin claims its types before it stops counting as
		// starting: one whose start ended since the first look is
		// found now.
		p.mu.Lock()
		s, ok = p.byType[envType]
		closed = p.closed
		p.mu.Unlock()
	}
	switch {
	case !ok:
		return nil, fmt.Errorf("%w %q", core.ErrNoPlugin, envType)
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
func (p *Plugins) List() []core.PluginStatus {
	list := make([]core.PluginStatus, 0, len(p.plugins))
	for _, s := range p.plugins {
		list = append(list, s.status())
	}
	return list
}

// Plugin describes the plugin name, or returns an error wrapping
// core.ErrPluginNotFound.
func (p *Plugins) Plugin(name string) (core.PluginStatus, error) {
	s, err := p.find(name)
	if err != nil {
		return core.PluginStatus{}, err
	}
	return s.status(), nil
}

func (p *Plugins) find(name string) (*supervised, error) {
	for _, s := range p.plugins {
		if s.name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", core.ErrPluginNotFound, name)
}

// Restart stops the plugin name if it runs — its sessions end with reason
// plugin_restarted — closes its circuit, and starts it again. It returns
// the plugin's status once the start succeeded or failed; if ctx ends
// first, the restart goes on and the status says starting. A Restart
// called while another is under way joins it and returns its outcome; one
// called after another answered restarts the plugin again. An unknown
// name wraps core.ErrPluginNotFound.
func (p *Plugins) Restart(ctx context.Context, name string) (core.PluginStatus, error) {
	s, err := p.find(name)
	if err != nil {
		return core.PluginStatus{}, err
	}
	s.mu.Lock()
	req := restartRequest{reply: make(chan core.PluginStatus, 1), ticket: s.requested}
	s.mu.Unlock()
	reply := req.reply
	select {
	case s.restartC <- req:
	case <-p.ctx.Done():
		return core.PluginStatus{}, fmt.Errorf("plugin %s: %w: the plugins are stopping", name, shared.ErrUnavailable)
	case <-ctx.Done():
		return core.PluginStatus{}, ctx.Err()
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

// Detach is the server leaving without ending its sessions: every plugin
// process that holds its sessions for the next server (one launched, or
// reattached to, with Options.SocketDir set, by a plugin built with an SDK
// that can) and has sessions to hold, or does not say within a second
// whether it has, is left running, its reattach record kept, and this
// Plugins lets go of it; each starts its orphan timer. Any other plugin
// process, one with no session among them, is stopped as Shutdown stops
// it, ctx ending its grace period: it has nothing to wait for the next
// server with, which starts its own. Afterwards the Plugins is closed, as
// after Shutdown. Only the first call of Detach, Shutdown or Close does
// anything.
func (p *Plugins) Detach(ctx context.Context) { p.closeWith(ctx, true) }

// Shutdown stops every plugin process and waits for them to exit, and for
// their supervisors. Each plugin is asked to stop — it kills the sessions
// still open in it — and its process group is killed when it has not
// exited after a grace period (2 s), or at once when ctx ends. A plugin
// still starting is killed at once. Shutdown returns within about half a
// second of the last kill, whatever the plugins' children do. Their
// reattach records are removed. Only the first call of Shutdown, Close or
// Detach does anything; later ones return at once, or wait for the first
// to finish.
func (p *Plugins) Shutdown(ctx context.Context) { p.closeWith(ctx, false) }

// closeWith is Shutdown, or Detach when leave is set.
func (p *Plugins) closeWith(ctx context.Context, leave bool) {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.stopping = ctx
		p.leaving = leave
		p.mu.Unlock()
		p.cancel()
		p.wg.Wait()
		if p.sock != nil {
			p.sock.close()
		}
	})
}

// detaching reports whether the Plugins is closing with Detach.
func (p *Plugins) detaching() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.leaving
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

// canKeepProcesses reports whether plugin processes can outlive this
// server here, and says why not when they cannot, though the socket
// directory would let them: a process left running must be let go of
// without waiting for it, and watched by the next server, which takes
// pidfds (Linux 5.3 and later).
func (p *Plugins) canKeepProcesses() bool {
	if !p.sock.owner {
		p.opts.Logger.Warn("another server uses the plugin socket directory: this server's plugins end their sessions when it stops",
			"socket_dir", p.sock.path)
		return false
	}
	if !pidfdsWork() {
		p.opts.Logger.Warn("no pidfds on this system: the plugins end their sessions when the server stops, and a restarted server cannot take them up")
		return false
	}
	return true
}
