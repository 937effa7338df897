package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/shared"
)

// generation is one process of a plugin: one this server launched, or one
// a previous server left running that Load reattached to.
type generation struct {
	client  *plugin.Client
	rpc     plugin.ClientProtocol // go-plugin's connection
	proc    process
	log     *hcLogger          // go-plugin's logger for the process
	env     shared.Environment // the dispensed gRPC client
	info    shared.Info
	wrapped *pluginEnv
	exited  <-chan struct{} // closed when the process has exited
	pid     int
	addr    net.Addr
	health  *healthCache

	// reattached: taken over from a previous server by Load, not launched.
	reattached bool
	// durable: the process holds its sessions for the next server when
	// this one leaves (Detach); release ends the hold, and record is the
	// path of its reattach record.
	durable bool
	release func()
	record  string

	stopReason atomic.Pointer[string] // why the host stopped it on purpose
	cleanOnce  sync.Once
}

// process is what a generation needs of the runner that watches its
// process: procRunner for a process this server launched, attachRunner
// for one it reattached to.
type process interface {
	// killGroup kills the plugin's process group, if it still runs.
	killGroup()
	// detach stops watching the process, leaving it running.
	detach()
}

// stop ends the process on purpose; reason, when set, is what its
// sessions' exits report instead of plugin_crashed. The plugin is asked to
// stop (go-plugin's Shutdown call) and given pluginStopGrace to exit, or
// until ctx ends if that is sooner; then its process group is killed.
// Either way stop returns within pluginDrainTimeout of the process's end.
func (g *generation) stop(ctx context.Context, reason string) {
	if reason != "" {
		g.stopReason.Store(&reason)
	}
	// go-plugin gives a plugin that answered Shutdown as long, but waits
	// for the answer without a bound.
	grace := time.AfterFunc(pluginStopGrace, g.proc.killGroup)
	defer grace.Stop()
	defer context.AfterFunc(ctx, g.proc.killGroup)()
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

// cleanup releases what a process that exited leaves behind: its hold,
// go-plugin's connection and goroutines, the Unix socket a killed plugin
// could not remove, and its reattach record.
func (g *generation) cleanup() {
	g.cleanOnce.Do(func() {
		g.releaseHold()
		g.client.Kill() // after an exit: closes the connection, waits for go-plugin's goroutines
		if a, ok := g.addr.(*net.UnixAddr); ok && a.Name != "" {
			if fi, err := os.Lstat(a.Name); err == nil && fi.Mode()&os.ModeSocket != 0 {
				_ = os.Remove(a.Name)
			}
		}
		if g.record != "" {
			removeRecord(g.record, g.pid)
		}
	})
}

// detach leaves the process running, with its sessions, for the next
// server: go-plugin's connection is closed — but not with go-plugin's
// Kill or its ClientProtocol's Close, which both ask the plugin to shut
// down — the hold ends, which starts the plugin's orphan timer, and the
// runner stops watching the process without killing it. The reattach
// record stays. After detach, the generation is done with, as after
// cleanup.
func (g *generation) detach() {
	g.cleanOnce.Do(func() {
		g.log.mute()
		closeConn(g.rpc)
		g.releaseHold()
		g.proc.detach()
	})
}

// closeConn closes go-plugin's connection to a plugin and nothing else:
// its broker and stdio goroutines end with the connection.
func closeConn(rpc plugin.ClientProtocol) {
	if c, ok := rpc.(*plugin.GRPCClient); ok {
		_ = c.Conn.Close()
	}
}

// releaseHold ends the generation's hold on its process, if it has one.
func (g *generation) releaseHold() {
	if g.release != nil {
		g.release()
	}
}

// pluginEnv is the Environment of one plugin process as Plugins hands it
// out: it caches health answers, refuses to spawn in an environment found
// unavailable, and tells sessions that ended because an operator restarted
// the plugin from sessions whose plugin crashed. It is the process's
// shared.Keeper too, which the manager attaches to kept sessions through.
type pluginEnv struct {
	g *generation
	// streamOnly keeps the sessions' bytes on their streams (StreamOnly).
	streamOnly bool
}

// env is the plugin's client, as StreamOnly asks.
func (e *pluginEnv) env() shared.Environment {
	if bc, ok := e.g.env.(shared.ByteChannels); ok && e.streamOnly {
		return bc.StreamOnly()
	}
	return e.g.env
}

// StreamOnly implements shared.ByteChannels.
func (e *pluginEnv) StreamOnly() shared.Environment {
	return &pluginEnv{g: e.g, streamOnly: true}
}

var (
	_ shared.Environment     = (*pluginEnv)(nil)
	_ shared.ConfigValidator = (*pluginEnv)(nil)
	_ shared.HealthChecker   = (*pluginEnv)(nil)
	_ shared.Keeper          = (*pluginEnv)(nil)
	_ core.HealthReporter    = (*pluginEnv)(nil)
	_ shared.ByteChannels    = (*pluginEnv)(nil)
	_ shared.Detacher        = (*supervisedPTY)(nil)
)

func (e *pluginEnv) Info(ctx context.Context) (shared.Info, error) { return e.g.env.Info(ctx) }

// Spawn refuses at once, with the plugin's reason, an environment whose
// last health check (within the cache's time to live) found it
// unavailable; otherwise it spawns. It does not ask for health itself: a
// check can cost as much as a start (an SSH login), and a start in an
// environment that is down fails with shared.ErrUnavailable anyway.
func (e *pluginEnv) Spawn(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
	if r, ok := e.g.health.cached(req.EnvironmentType, req.Config); ok && refuses(r) {
		return nil, r.Err
	}
	p, err := e.env().Spawn(ctx, req)
	if err != nil {
		return nil, e.exitedError(err)
	}
	return &supervisedPTY{PTY: p, g: e.g}, nil
}

// exitedError makes the error of a call the process died under an
// unavailability: the supervisor restarts it.
func (e *pluginEnv) exitedError(err error) error {
	if errors.Is(err, shared.ErrPluginExited) {
		return &pluginExitedError{name: e.g.info.Name, err: err}
	}
	return err
}

// pluginExitedError is a call's err, which wraps shared.ErrPluginExited,
// made an unavailability of the plugin name. Its message says that the
// plugin exited once: "environment unavailable: plugin NAME exited: WHY".
type pluginExitedError struct {
	name string
	err  error
}

func (e *pluginExitedError) Error() string {
	msg := fmt.Sprintf("%v: plugin %s exited", shared.ErrUnavailable, e.name)
	why := strings.TrimPrefix(e.err.Error(), shared.ErrPluginExited.Error())
	if why = strings.TrimPrefix(why, ": "); why != "" {
		msg += ": " + why
	}
	return msg
}

func (e *pluginExitedError) Unwrap() []error { return []error{shared.ErrUnavailable, e.err} }

// keeper returns the process's Keeper, or an error wrapping
// shared.ErrUnsupported for a plugin built before sessions could outlive
// their host.
func (e *pluginEnv) keeper() (shared.Keeper, error) {
	k, ok := e.env().(shared.Keeper)
	if !ok {
		return nil, fmt.Errorf("plugin %s: kept sessions: %w", e.g.info.Name, shared.ErrUnsupported)
	}
	return k, nil
}

// Hold implements shared.Keeper. Plugins holds its durable processes
// itself; this is for callers that want a hold of their own.
func (e *pluginEnv) Hold(ctx context.Context, orphanTimeout time.Duration) (func(), error) {
	k, err := e.keeper()
	if err != nil {
		return nil, err
	}
	return k.Hold(ctx, orphanTimeout)
}

// Sessions implements shared.Keeper.
func (e *pluginEnv) Sessions(ctx context.Context) ([]shared.KeptSession, error) {
	k, err := e.keeper()
	if err != nil {
		return nil, err
	}
	list, err := k.Sessions(ctx)
	return list, e.exitedError(err)
}

// Attach implements shared.Keeper: the PTY is supervised as Spawn's are.
func (e *pluginEnv) Attach(ctx context.Context, id string, offset int64) (shared.PTY, int64, error) {
	k, err := e.keeper()
	if err != nil {
		return nil, 0, err
	}
	p, start, err := k.Attach(ctx, id, offset)
	if err != nil {
		return nil, 0, e.exitedError(err)
	}
	return &supervisedPTY{PTY: p, g: e.g}, start, nil
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
	if r.Status == core.HealthUnknown {
		return fmt.Errorf("plugin %s: health: %w", e.g.info.Name, shared.ErrUnsupported)
	}
	return r.Err
}

// ReportHealth implements core.HealthReporter: the cached answer, with the
// time it was given.
func (e *pluginEnv) ReportHealth(ctx context.Context, envType string, config json.RawMessage) core.HealthReport {
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

// ByteChannel tells shared.UsesByteChannel about the plugin's PTY.
func (p *supervisedPTY) ByteChannel() bool { return shared.UsesByteChannel(p.PTY) }

// Detach implements shared.Detacher by passing it on to the plugin's PTY.
// A PTY of a plugin built before sessions could outlive their host has no
// Detach: then this does nothing, and the Close that is to follow ends the
// session.
func (p *supervisedPTY) Detach() {
	if d, ok := p.PTY.(shared.Detacher); ok {
		d.Detach()
	}
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
