package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/ptyhost/ptyhost/shared"
)

// ReasonPluginRestarted is the status reason of a session that ended
// because an operator restarted its plugin (Plugins.Restart).
const ReasonPluginRestarted = "plugin_restarted"

// supervised is one plugin and its supervisor. The supervisor, run, is the
// only goroutine that starts and stops the plugin's processes after
// LoadPlugins, so launches of one plugin never overlap.
type supervised struct {
	p        *Plugins
	name     string
	conf     PluginConfig
	builtin  bool
	log      *slog.Logger
	restartC chan chan PluginStatus // operator restarts, answered after the attempt
	static   shared.Environment     // StaticPlugins only

	// sumOf caches the executable's checksum by its identity; only the
	// launching goroutine uses it.
	sumOf struct {
		key fileKey
		sum string
	}

	mu sync.Mutex
	// mu protects the following.
	path        string
	state       PluginState
	reason      string
	info        shared.Info
	sum         string
	gen         *generation // the running process; nil unless running
	restarts    int
	crashes     []time.Time // within the crash window, oldest first
	nextAttempt time.Time
}

func newSupervised(p *Plugins, c PluginConfig) *supervised {
	return &supervised{
		p:        p,
		name:     c.Name,
		conf:     c,
		builtin:  IsBuiltinPlugin(c.Name),
		log:      p.log.With("plugin", c.Name),
		restartC: make(chan chan PluginStatus),
		path:     filepath.Join(p.opts.Dir, PluginPrefix+c.Name),
		state:    PluginStarting,
	}
}

// describe names the plugin in errors: its path, or its name.
func (s *supervised) describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.static != nil || s.path == "" {
		return s.name
	}
	return s.path
}

func (s *supervised) status() PluginStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := PluginStatus{
		Name:         s.name,
		Version:      s.info.Version,
		SHA256:       s.sum,
		Pinned:       s.conf.SHA256 != "",
		Builtin:      s.builtin,
		Types:        slices.Clone(s.info.Types),
		Capabilities: slices.Clone(s.info.Capabilities),
		State:        s.state,
		Reason:       s.reason,
		Restarts:     s.restarts,
	}
	if st.Types == nil {
		st.Types = []string{}
	}
	if st.Capabilities == nil {
		st.Capabilities = []string{}
	}
	if s.static == nil {
		st.Path = s.path
	}
	if s.state == PluginRestarting {
		t := s.nextAttempt
		st.NextAttempt = &t
	}
	if s.gen != nil {
		st.PID = s.gen.pid
	}
	return st
}

// setState records a state; s.mu must be held.
func (s *supervised) setState(state PluginState, reason string) {
	s.state, s.reason = state, reason
	s.p.changed()
}

// environment returns what serves the plugin's types now.
func (s *supervised) environment() (shared.Environment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case PluginRunning:
		return s.gen.wrapped, nil
	case PluginStarting:
		return nil, fmt.Errorf("%w: plugin %s is starting", shared.ErrUnavailable, s.name)
	case PluginRestarting:
		return nil, fmt.Errorf("%w: plugin %s is restarting (next attempt in %v): %s", shared.ErrUnavailable, s.name,
			time.Until(s.nextAttempt).Round(time.Millisecond), s.reason)
	case PluginFailed:
		return nil, fmt.Errorf("%w: plugin %s has failed: %s", shared.ErrUnavailable, s.name, s.reason)
	case PluginRefused:
		return nil, fmt.Errorf("%w: plugin %s was refused: %s", shared.ErrUnavailable, s.name, s.reason)
	default:
		return nil, fmt.Errorf("plugin %s: %w", s.name, shared.ErrPluginExited)
	}
}

// run supervises the plugin until ctx ends, starting from g, the process
// LoadPlugins started (nil if it did not start). It restarts a process that
// dies, with backoff, and serves operator restarts.
func (s *supervised) run(ctx context.Context, g *generation) {
	var retry *time.Timer
	stopRetry := func() {
		if retry != nil {
			retry.Stop()
			retry = nil
		}
	}
	defer stopRetry()
	// scheduleAfterCrash records a crash (or a failed restart) and arms
	// the next attempt, unless the circuit opened.
	scheduleAfterCrash := func(why string) {
		if delay, ok := s.crashed(time.Now(), why); ok {
			retry = time.NewTimer(delay)
		}
	}
	for {
		var exited <-chan struct{}
		if g != nil {
			exited = g.exited
		}
		var retryC <-chan time.Time
		if retry != nil {
			retryC = retry.C
		}
		select {
		case <-ctx.Done():
			if g != nil {
				g.stop("")
			}
			s.mu.Lock()
			s.gen = nil
			s.setState(PluginStopped, "")
			s.mu.Unlock()
			return

		case <-exited:
			if ctx.Err() == nil { // else stopping: not a crash
				// First out of service, then cleaned up.
				scheduleAfterCrash("the process exited unexpectedly")
			}
			g.cleanup()
			g = nil

		case <-retryC:
			retry = nil
			var err error
			if g, err = s.launch(ctx, true); err != nil && ctx.Err() == nil && !isRefusal(err) {
				scheduleAfterCrash(err.Error())
			}

		case reply := <-s.restartC:
			stopRetry()
			if g != nil {
				s.log.Info("restarting the plugin on request; its sessions end", "pid", g.pid)
				g.stop(ReasonPluginRestarted)
				g = nil
			}
			s.mu.Lock()
			s.crashes = nil // the operator closes the circuit
			s.mu.Unlock()
			g, _ = s.launch(ctx, true)
			reply <- s.status()
		}
	}
}

// crashed records a crash at now. It returns the delay before the next
// attempt, or false when the crash opened the circuit.
func (s *supervised) crashed(now time.Time, why string) (time.Duration, bool) {
	o := s.p.opts
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen = nil
	cut := now.Add(-o.CrashWindow)
	s.crashes = slices.DeleteFunc(s.crashes, func(t time.Time) bool { return !t.After(cut) })
	s.crashes = append(s.crashes, now)
	n := len(s.crashes)
	if o.CrashLimit > 0 && n >= o.CrashLimit {
		s.setState(PluginFailed, fmt.Sprintf("crashed %d times in %v; circuit open: run 'ptyhost plugins restart %s'", n, o.CrashWindow, s.name))
		s.log.Error("plugin crashed too often; not restarting it until an operator does", "crashes", n, "window", o.CrashWindow, "last", why)
		return 0, false
	}
	delay := backoff(o.RestartBackoff, o.MaxRestartBackoff, n)
	s.nextAttempt = now.Add(delay)
	s.setState(PluginRestarting, why)
	s.log.Warn("plugin crashed; restarting it", "reason", why, "crashes_in_window", n, "delay", delay)
	return delay, true
}

// refusal is a launch failure the server chose — a checksum or protocol
// version mismatch, a type another plugin serves — that retrying cannot
// mend.
type refusal struct{ msg string }

func (e *refusal) Error() string { return e.msg }

func isRefusal(err error) bool {
	var r *refusal
	return errors.As(err, &r)
}

// launch starts a new process and records the outcome in s's state: the
// generation and running, or nil, an error, and failed or refused. again
// says it is not the plugin's first launch.
func (s *supervised) launch(ctx context.Context, again bool) (*generation, error) {
	s.mu.Lock()
	s.gen = nil
	s.setState(PluginStarting, "")
	if again {
		s.restarts++
	}
	s.mu.Unlock()

	g, err := s.start(ctx)
	if err == nil && again {
		// A restarted plugin may serve other types than before.
		if cerr := s.p.claim(s, g.info.Types); cerr != nil {
			g.stop("")
			g, err = nil, &refusal{cerr.Error()}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		state := PluginFailed
		if isRefusal(err) {
			state = PluginRefused
		}
		s.setState(state, err.Error())
		s.log.Error("plugin "+string(state), "path", s.path, "reason", err)
		return nil, err
	}
	s.gen, s.info = g, g.info
	s.setState(PluginRunning, "")
	if again {
		s.log.Info("plugin restarted", "version", g.info.Version, "types", g.info.Types, "pid", g.pid, "restarts", s.restarts)
	}
	return g, nil
}

// start starts the plugin's executable, checks it, and asks for its Info.
// On failure nothing is left running.
func (s *supervised) start(ctx context.Context) (*generation, error) {
	s.mu.Lock()
	path := s.path
	s.mu.Unlock()
	if err := executable(path); err != nil {
		return nil, fmt.Errorf("no plugin executable: %w", err)
	}
	sum, err := s.checksum(path)
	if err != nil {
		return nil, fmt.Errorf("reading the plugin executable: %w", err)
	}
	s.mu.Lock()
	s.sum = sum
	s.mu.Unlock()

	o := s.p.opts
	cmd := exec.Command(path, s.conf.Args...)
	cmd.Env = s.conf.environ(s.builtin, os.Environ())
	var life context.Context
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		VersionedPlugins: versionedPlugins(&life),
		Cmd:              cmd,
		SkipHostEnv:      true, // cmd.Env is the whole environment
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		StartTimeout:     o.StartTimeout,
		Logger:           newHCLogger(s.log, ""),
	}
	pin := strings.ToLower(s.conf.SHA256)
	if pin != "" {
		want, _ := hex.DecodeString(pin) // validated
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: want, Hash: sha256.New()}
	}
	client := plugin.NewClient(cfg)
	env, info, err := dispense(ctx, client)
	if err != nil {
		client.Kill()
		return nil, s.startError(err, path, pin)
	}
	g := &generation{client: client, env: env, info: info, exited: life.Done(), health: newHealthCache(o)}
	if rc := client.ReattachConfig(); rc != nil {
		g.pid, g.addr = rc.Pid, rc.Addr
	}
	g.wrapped = &pluginEnv{g: g}
	return g, nil
}

// versionMismatch matches go-plugin's error for a plugin that speaks a
// protocol version the host does not.
var versionMismatch = regexp.MustCompile(`incompatible API version with plugin\. Plugin version: (\d+)`)

// startError explains a failed start.
func (s *supervised) startError(err error, path, pin string) error {
	if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
		actual, herr := fileSHA256(path)
		if herr != nil {
			actual = "unreadable (" + herr.Error() + ")"
		}
		s.mu.Lock()
		s.sum = actual
		s.mu.Unlock()
		return &refusal{fmt.Sprintf("sha256 mismatch: the configuration pins %s, but %s has %s", pin, path, actual)}
	}
	if m := versionMismatch.FindStringSubmatch(err.Error()); m != nil {
		return &refusal{fmt.Sprintf("plugin %s speaks protocol version %s; this server supports %s", s.name, m[1], supportedVersions())}
	}
	return fmt.Errorf("did not start: %w", err)
}

// supportedVersions lists the plugin protocol versions the host speaks:
// "1", or "1 and 2".
func supportedVersions() string {
	var vs []string
	for _, v := range slices.Sorted(maps.Keys(shared.VersionedPlugins(nil))) {
		vs = append(vs, strconv.Itoa(v))
	}
	if len(vs) > 1 {
		return strings.Join(vs[:len(vs)-1], ", ") + " and " + vs[len(vs)-1]
	}
	return strings.Join(vs, "")
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

// versionedPlugins is shared.VersionedPlugins for the host, with every
// plugin wrapped so that the context go-plugin gives the dispensed client,
// which ends when the plugin process has exited, is stored in *life.
func versionedPlugins(life *context.Context) map[int]plugin.PluginSet {
	sets := shared.VersionedPlugins(nil)
	for _, set := range sets {
		for name, pl := range set {
			if gp, ok := pl.(plugin.GRPCPlugin); ok {
				set[name] = &lifePlugin{grpc: gp, life: life}
			}
		}
	}
	return sets
}

// lifePlugin is a GRPCPlugin that records its client's life context.
type lifePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	grpc plugin.GRPCPlugin
	life *context.Context // written by Dispense, in the dispensing goroutine
}

func (p *lifePlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	return p.grpc.GRPCServer(b, s)
}

func (p *lifePlugin) GRPCClient(ctx context.Context, b *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	*p.life = ctx
	return p.grpc.GRPCClient(ctx, b, c)
}

// fileKey identifies a file's content well enough to cache its checksum
// for listings (the pin itself is checked by go-plugin at every launch).
type fileKey struct {
	path  string
	size  int64
	mtime time.Time
}

// checksum returns the SHA-256 of the executable at path, cached while the
// file stays the same.
func (s *supervised) checksum(path string) (string, error) {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return "", err
	}
	key := fileKey{resolved, fi.Size(), fi.ModTime()}
	if s.sumOf.key == key {
		return s.sumOf.sum, nil
	}
	sum, err := fileSHA256(resolved)
	if err != nil {
		return "", err
	}
	s.sumOf.key, s.sumOf.sum = key, sum
	return sum, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// generation is one process of a plugin.
type generation struct {
	client  *plugin.Client
	env     shared.Environment // the dispensed gRPC client
	info    shared.Info
	wrapped *pluginEnv
	exited  <-chan struct{} // closed when the process has exited
	pid     int
	addr    net.Addr
	health  *healthCache

	stopReason atomic.Pointer[string] // why the host stopped it on purpose
	cleanOnce  sync.Once
}

// stop ends the process on purpose; reason, when set, is what its
// sessions' exits report instead of plugin_crashed.
func (g *generation) stop(reason string) {
	if reason != "" {
		g.stopReason.Store(&reason)
	}
	g.client.Kill()
	g.cleanup()
}

// stoppedFor returns the reason the host stopped the process, or "".
func (g *generation) stoppedFor() string {
	if r := g.stopReason.Load(); r != nil {
		return *r
	}
	return ""
}

// cleanup releases what a process that exited leaves behind: go-plugin's
// connection and goroutines, and the Unix socket a killed plugin could not
// remove.
func (g *generation) cleanup() {
	g.cleanOnce.Do(func() {
		g.client.Kill() // after an exit: closes the connection, waits for go-plugin's goroutines
		if a, ok := g.addr.(*net.UnixAddr); ok && a.Name != "" {
			if fi, err := os.Lstat(a.Name); err == nil && fi.Mode()&os.ModeSocket != 0 {
				_ = os.Remove(a.Name)
			}
		}
	})
}

// pluginEnv is the Environment of one plugin process as Plugins hands it
// out: it caches health answers, refuses to spawn in an environment found
// unavailable, and tells sessions that ended because an operator restarted
// the plugin from sessions whose plugin crashed.
type pluginEnv struct{ g *generation }

var (
	_ shared.Environment     = (*pluginEnv)(nil)
	_ shared.ConfigValidator = (*pluginEnv)(nil)
	_ shared.HealthChecker   = (*pluginEnv)(nil)
)

func (e *pluginEnv) Info(ctx context.Context) (shared.Info, error) { return e.g.env.Info(ctx) }

// Spawn refuses at once, with the plugin's reason, an environment whose
// last health check (within the cache's time to live) found it
// unavailable; otherwise it spawns. It does not ask for health itself: a
// check can cost as much as a start (an SSH login), and a start in an
// environment that is down fails with shared.ErrUnavailable anyway.
func (e *pluginEnv) Spawn(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	if r, ok := e.g.health.cached(req.EnvironmentType, req.Config); ok && r.refuses() {
		return nil, r.err
	}
	p, err := e.g.env.Spawn(ctx, req)
	if err != nil {
		return nil, err
	}
	return &supervisedPTY{PTY: p, g: e.g}, nil
}

func (e *pluginEnv) ValidateConfig(ctx context.Context, envType string, config json.RawMessage) error {
	v, ok := e.g.env.(shared.ConfigValidator)
	if !ok {
		return shared.ErrUnsupported
	}
	return v.ValidateConfig(ctx, envType, config)
}

// Health returns the cached result of the environment's health check:
// nil when healthy, an error wrapping shared.ErrUnsupported when the plugin
// does not report health.
func (e *pluginEnv) Health(ctx context.Context, envType string, config json.RawMessage) error {
	r := e.g.health.check(ctx, e.g, envType, config)
	if r.Status == HealthUnknown {
		return fmt.Errorf("plugin %s: health: %w", e.g.info.Name, shared.ErrUnsupported)
	}
	return r.err
}

// checkHealth implements healthReporter.
func (e *pluginEnv) checkHealth(ctx context.Context, envType string, config json.RawMessage) healthResult {
	return e.g.health.check(ctx, e.g, envType, config)
}

// supervisedPTY is a session of a plugin process. When the process was
// stopped by an operator's restart, the session's end reads as an exit
// with reason plugin_restarted rather than a broken stream (which the
// manager records as plugin_crashed).
type supervisedPTY struct {
	shared.PTY
	g         *generation
	restarted atomic.Bool
}

func (p *supervisedPTY) Read(b []byte) (int, error) {
	n, err := p.PTY.Read(b)
	if err != nil && errors.Is(err, shared.ErrPluginExited) && p.g.stoppedFor() != "" {
		p.restarted.Store(true)
		return n, io.EOF
	}
	return n, err
}

func (p *supervisedPTY) Wait(ctx context.Context) (shared.ExitStatus, error) {
	if p.restarted.Load() {
		return shared.ExitStatus{Code: -1, Reason: p.g.stoppedFor()}, nil
	}
	st, err := p.PTY.Wait(ctx)
	if err != nil && errors.Is(err, shared.ErrPluginExited) && p.g.stoppedFor() != "" {
		return shared.ExitStatus{Code: -1, Reason: p.g.stoppedFor()}, nil
	}
	return st, err
}
