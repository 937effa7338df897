package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/shared"
)

// generation is one process of a plugin.
type generation struct {
	client  *plugin.Client
	proc    *procRunner
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
	_ core.HealthReporter    = (*pluginEnv)(nil)
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
	p, err := e.g.env.Spawn(ctx, req)
	if err != nil {
		if errors.Is(err, shared.ErrPluginExited) {
			// The process died under the call; the supervisor restarts it.
			return nil, fmt.Errorf("%w: plugin %s exited: %w", shared.ErrUnavailable, e.g.info.Name, err)
		}
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
