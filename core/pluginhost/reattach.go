package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/shared"
)

// Plugin processes that outlive their server.
//
// A generation is durable when its process holds its sessions for the
// next server (shared.Keeper.Hold, for as long as the generation lives)
// and its reattach record is written: SOCKETDIR/NAME.reattach.json, which
// says where the process listens and holds go-plugin's AutoMTLS material
// for this connection. Only the server's user can reach a plugin: its
// socket and the TLS material in the record are both in the socket
// directory, mode 0700, owned by that user and checked to be so (see
// prepareSocketDir), and the plugin accepts only TLS connections made
// with the client certificate it was given at launch.
//
// Detach leaves durable processes running; a later Load on the same
// socket directory reattaches to each recorded process that still runs
// (reattachAll), holds it, and Survivors lists its sessions for the
// manager to take up. Only the Plugins that found the socket directory
// unused makes durable generations and reattaches (socketDir.owner): a
// second one on the same directory would take the first one's processes
// over. Without Options.SocketDir, the directory is a new temporary one
// every time, so no generation is durable.

// reattachTimeout bounds Load's reattach to one plugin process: a plugin
// whose record is unusable, or that does not answer, never holds the
// server up longer.
const reattachTimeout = 5 * time.Second

// makeDurable holds g's process, so that it keeps its sessions when this
// server leaves, and writes its reattach record, which record makes. A
// plugin built before holds existed, or a record that cannot be made,
// leaves g as generations were before: its sessions end when the server
// leaves.
func (s *supervised) makeDurable(ctx context.Context, g *generation, record func() (*reattachRecord, error)) {
	if !s.p.durable {
		return
	}
	release, err := s.hold(ctx, g)
	switch {
	case errors.Is(err, shared.ErrUnsupported):
		s.log.Info("plugin cannot keep its sessions without a server (built before that existed): they end when the server stops", "pid", g.pid)
		return
	case err != nil:
		s.log.Warn("plugin not held: its sessions end when the server stops", "pid", g.pid, "error", err)
		return
	}
	path := recordPath(s.p.sock.path, s.name)
	rec, recErr := record()
	if recErr == nil {
		recErr = writeRecord(path, rec)
	}
	if recErr != nil {
		release()
		s.log.Warn("no reattach record for the plugin: its sessions end when the server stops", "pid", g.pid, "error", recErr)
		return
	}
	g.durable, g.release, g.record = true, release, path
}

// hold holds g's process for the orphan timeout, until release is called.
// ctx bounds the call only: a plugin that does not answer within it is
// not held.
func (s *supervised) hold(ctx context.Context, g *generation) (release func(), err error) {
	k, err := g.wrapped.keeper()
	if err != nil {
		return nil, err
	}
	type result struct {
		release func()
		err     error
	}
	holdCtx, cancel := context.WithCancel(context.Background())
	c := make(chan result, 1)
	go func() {
		if beforeHold != nil {
			beforeHold(ctx)
		}
		r, err := k.Hold(holdCtx, s.p.opts.OrphanTimeout)
		c <- result{r, err}
	}()
	select {
	case r := <-c:
		if r.err != nil {
			cancel()
			return nil, r.err
		}
		return func() { r.release(); cancel() }, nil
	case <-ctx.Done():
		cancel()
		if r := <-c; r.err == nil {
			r.release()
		}
		return nil, fmt.Errorf("hold: %w", ctx.Err())
	}
}

// beforeHold, when set (by a test), runs before a started plugin is asked
// to hold its sessions, with the start's context.
var beforeHold func(ctx context.Context)

// reattachAll reattaches, in parallel, to the plugin processes a previous
// server left running, each within reattachTimeout, and records those it
// reattached to as their plugins' first generation (supervised.adopted).
// It returns once every attempt has ended.
func (p *Plugins) reattachAll(ctx context.Context) {
	if !p.durable {
		return
	}
	var wg sync.WaitGroup
	for _, s := range p.plugins {
		wg.Go(func() {
			bounded, cancel := context.WithTimeout(ctx, reattachTimeout)
			defer cancel()
			s.adopted = s.reattachRecorded(bounded, ctx)
		})
	}
	wg.Wait()
	p.drainExitedLogs()
}

// errGone: the recorded process has exited.
var errGone = errors.New("the process has exited")

// reattachRecorded reattaches to the process s's record names, if any,
// within ctx, and returns its generation; nil when there is none to
// reattach to (the plugin is then launched anew). A record that fails is
// removed, save one of a protocol version this server does not speak,
// whose process is left alone, and one that failed because Load's ctx,
// parent, ended.
func (s *supervised) reattachRecorded(ctx, parent context.Context) *generation {
	path := recordPath(s.p.sock.path, s.name)
	rec, err := readRecord(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		s.log.Warn("the plugin's reattach record is unusable; launching the plugin anew", "error", err)
		removeRecord(path, 0)
		return nil
	}
	if _, ok := shared.VersionedPlugins(nil)[rec.ProtocolVersion]; !ok {
		s.log.Error(fmt.Sprintf("plugin %s (pid %d), left running by the previous server, speaks protocol version %d; this server supports %s: "+
			"not reattaching to it, its sessions are left to its orphan timeout; launching the plugin anew",
			s.name, rec.PID, rec.ProtocolVersion, supportedVersions()), "pid", rec.PID, "protocol_version", rec.ProtocolVersion)
		return nil
	}
	start := time.Now()
	g, err := s.reattach(ctx, rec, path)
	switch {
	case errors.Is(err, errGone):
		s.log.Info("the plugin process the previous server left has exited; launching the plugin anew", "pid", rec.PID)
		drainLog(s.p.sock.path, rec.PID, s.log)
	case err != nil:
		s.log.Warn("could not reattach to the plugin process the previous server left; launching the plugin anew (the process is left to its orphan timeout)",
			"pid", rec.PID, "error", err, "after", time.Since(start).Round(time.Millisecond))
	}
	if err != nil {
		if parent.Err() == nil { // else Load was abandoned: the next one tries again
			removeRecord(path, rec.PID)
		}
		return nil
	}
	return g
}

// reattach connects to the process rec describes, checks it is the
// plugin s may run (its pinned checksum), dispenses it, asks for its Info
// and holds it, within ctx. On failure the process is left as it was.
func (s *supervised) reattach(ctx context.Context, rec *reattachRecord, path string) (*generation, error) {
	s.mu.Lock()
	exe := s.path
	s.mu.Unlock()
	if pin := strings.ToLower(s.conf.SHA256); pin != "" && rec.SHA256 != pin {
		return nil, fmt.Errorf("it runs an executable with sha256 %s; the configuration pins %s", rec.SHA256, pin)
	}
	if rec.Path != exe {
		// An upgrade that installed the plugins elsewhere: the process
		// keeps its sessions as long as it speaks this server's protocol
		// version (checked before); the configured executable serves from
		// its next launch.
		s.log.Info("reattaching to a plugin process that runs another executable; the configured one serves from the plugin's next launch",
			"pid", rec.PID, "running", rec.Path, "configured", exe)
	}
	if rec.Launch != nil {
		if names, args := rec.Launch.differences(s.launchSumsSalted(rec.Launch.Salt)); len(names) > 0 || args {
			s.log.Warn("reattaching to a plugin process an earlier server launched with other variables or arguments than this one would; "+
				"new sessions get the earlier ones until the plugin restarts ('ptyhost plugins restart NAME', which ends its sessions)",
				"pid", rec.PID, "variables", strings.Join(names, ","), "args_changed", args)
		}
	}
	tlsConf, err := rec.tlsConfig()
	if err != nil {
		return nil, err
	}
	addr, err := rec.netAddr()
	if err != nil {
		return nil, err
	}
	w, err := watchPID(rec.PID)
	if errors.Is(err, syscall.ESRCH) {
		return nil, errGone
	}
	if err != nil {
		return nil, err
	}
	pluginLog := newHCLogger(s.log, "")
	r := newAttachRunner(w, pluginLog)
	if !w.alive() {
		r.detach()
		return nil, errGone
	}
	// The reattached process's stderr is not ours: it was a pipe to the
	// server that launched it. Once that server was gone the process
	// pointed it at its log file, which followLog relays.
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: shared.Handshake,
		// A reattaching client skips the version negotiation, which is
		// what sets Plugins from VersionedPlugins: set it for the
		// recorded version.
		Plugins: versionedPlugins(func() context.Context { return r.life })[rec.ProtocolVersion],
		Reattach: &plugin.ReattachConfig{
			Protocol:        plugin.ProtocolGRPC,
			ProtocolVersion: rec.ProtocolVersion,
			Addr:            addr,
			Pid:             rec.PID,
			ReattachFunc:    func() (runner.AttachedRunner, error) { return r, nil },
		},
		TLSConfig:        tlsConf,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  shared.GRPCDialOptions(),
		Logger:           pluginLog,
	})
	// go-plugin waits for its stdio stream without a bound: letting the
	// process go ends that wait.
	abandon := context.AfterFunc(ctx, r.detach)
	rpc, env, info, err := dispense(ctx, client)
	if !abandon() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		pluginLog.mute()
		closeConn(rpc)
		r.detach()
		return nil, fmt.Errorf("connecting: %w", err)
	}
	g := &generation{client: client, rpc: rpc, proc: r, log: pluginLog, env: s.trusted(env), info: info, exited: w.exited, pid: rec.PID, addr: addr,
		health: newHealthCache(s.p.opts), reattached: true}
	g.wrapped = &pluginEnv{g: g}
	release, err := s.hold(ctx, g)
	if err != nil {
		pluginLog.mute()
		closeConn(rpc)
		r.detach()
		return nil, err
	}
	g.durable, g.release, g.record = true, release, path
	s.mu.Lock()
	s.sum = rec.SHA256
	s.mu.Unlock()
	// Shutdown and Detach wait for the relay: it ends once the process
	// has exited (its file relayed to the end) or is let go.
	s.p.wg.Go(func() { followLog(r.life, s.p.sock.path, rec.PID, w.exited, pluginLog.Named(filepath.Base(rec.Path))) })
	return g, nil
}

// attachRunner is go-plugin's runner for a plugin process this server
// reattached to, which is not its child: it watches the process by its
// pid (pidWatch), kills its process group only while the process is alive
// (its pid not reused), and can let it go without killing it (detach).
type attachRunner struct {
	w       *pidWatch
	log     hclog.Logger
	life    context.Context // ends when the process has exited, or is let go
	endLife context.CancelFunc
	letGo   chan struct{} // closed by detach
	done    chan struct{} // closed when the watch has ended
	once    sync.Once
}

var _ runner.AttachedRunner = (*attachRunner)(nil)

func newAttachRunner(w *pidWatch, log hclog.Logger) *attachRunner {
	life, endLife := context.WithCancel(context.Background())
	r := &attachRunner{w: w, log: log, life: life, endLife: endLife, letGo: make(chan struct{}), done: make(chan struct{})}
	go r.watch()
	return r
}

// watch waits for the process to exit, or to be let go.
func (r *attachRunner) watch() {
	select {
	case <-r.w.exited:
		r.w.reap()
	case <-r.letGo:
	}
	r.endLife()
	r.w.stop()
	close(r.done)
}

// Wait waits until the process has exited or is let go.
func (r *attachRunner) Wait(ctx context.Context) error {
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Kill kills the plugin's process group, unless it has exited or was let
// go. It does not wait.
func (r *attachRunner) Kill(context.Context) error {
	select {
	case <-r.letGo:
		return nil
	default:
	}
	if err := r.w.killGroup(); err != nil {
		r.log.Warn("killing the plugin's process group", "pgid", r.w.pid, "error", err)
	}
	return nil
}

// killGroup is Kill, for the generation.
func (r *attachRunner) killGroup() { _ = r.Kill(context.Background()) }

// detach lets the process go: it is not watched or killed by this runner
// any more. It returns once the watch has ended.
func (r *attachRunner) detach() {
	r.once.Do(func() { close(r.letGo) })
	<-r.done
}

func (r *attachRunner) ID() string { return strconv.Itoa(r.w.pid) }

func (r *attachRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *attachRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// Survivors implements core.SurvivorSource: the sessions held by the
// plugin processes Load reattached to (not those it launched), each with
// the Keeper to attach to it through, and Foreign when its process may
// not keep a session of its type (mayKeep). A reattached process that has
// exited since has none. The plugins are asked together, each for at
// most reattachTimeout: one that does not answer by then is killed, as
// one that crashed (its supervisor starts it anew), so that it neither
// holds the server's start nor keeps sessions the server has given up.
// When a plugin cannot list its sessions, the others' are returned with
// an error naming it.
func (p *Plugins) Survivors(ctx context.Context) ([]core.Survivor, error) {
	type answer struct {
		list []shared.KeptSession
		err  error
		late bool // killed for it
	}
	answers := make([]answer, len(p.plugins))
	var wg sync.WaitGroup
	for i, s := range p.plugins {
		g := s.adopted
		if g == nil {
			continue
		}
		wg.Go(func() {
			actx, cancel := context.WithCancel(ctx)
			defer cancel()
			// Exactly one of the answer and the timer wins.
			const waiting, answered, late = 0, 1, 2
			var state atomic.Int32
			timer := time.AfterFunc(reattachTimeout, func() {
				if !state.CompareAndSwap(waiting, late) {
					return
				}
				s.log.Error("the plugin did not list the sessions it kept in time; killing it", "pid", g.pid, "timeout", reattachTimeout)
				g.proc.killGroup()
				cancel()
			})
			list, err := g.wrapped.Sessions(actx)
			timer.Stop()
			if !state.CompareAndSwap(waiting, answered) {
				list, err = nil, fmt.Errorf("no answer within %v; the plugin was killed", reattachTimeout)
			}
			answers[i] = answer{list, err, state.Load() == late}
		})
	}
	wg.Wait()
	var out []core.Survivor
	var errs []error
	for i, s := range p.plugins {
		g := s.adopted
		if g == nil {
			continue
		}
		select {
		case <-g.exited:
			if !answers[i].late {
				continue
			}
		default:
		}
		if err := answers[i].err; err != nil {
			errs = append(errs, fmt.Errorf("plugin %s: listing its sessions: %w", s.name, err))
			continue
		}
		for _, ks := range answers[i].list {
			out = append(out, core.Survivor{KeptSession: ks, Keeper: g.wrapped, Foreign: !p.mayKeep(s, g, ks.EnvironmentType)})
		}
	}
	return out, errors.Join(errs...)
}

// mayKeep reports whether the process g of plugin s may keep a session
// of type typ: g declared the type, and the type is s's — a built-in's
// own type is that built-in's, a claimed one its claimant's, and one not
// claimed yet (the reattached plugins claim their types once they run,
// which may be after Reconcile asks) s's only if no other reattached
// plugin declares it. A plugin does not take up another's session by
// listing its id.
func (p *Plugins) mayKeep(s *supervised, g *generation, typ string) bool {
	if !slices.Contains(g.info.Types, typ) {
		return false
	}
	if b := p.reservedBy(typ); b != nil {
		return b == s
	}
	p.mu.Lock()
	owner, claimed := p.byType[typ]
	p.mu.Unlock()
	if claimed {
		return owner == s
	}
	for _, o := range p.plugins {
		if o != s && o.adopted != nil && slices.Contains(o.adopted.info.Types, typ) {
			return false
		}
	}
	return true
}

var _ core.SurvivorSource = (*Plugins)(nil)
