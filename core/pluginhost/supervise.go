package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/shared"
)

// supervised is one plugin and its supervisor. The supervisor, run, is the
// only goroutine that starts and stops the plugin's processes, so launches
// of one plugin never overlap.
type supervised struct {
	p        *Plugins
	name     string
	conf     Config
	builtin  bool
	log      *slog.Logger
	restartC chan restartRequest // operator restarts, answered after the attempt
	// adopted is the process of a previous server that Load reattached
	// to, the plugin's first generation; set before run starts, then
	// never changed.
	adopted *generation

	// sumOf caches the executable's checksum by its identity; only the
	// launching goroutine uses it.
	sumOf struct {
		fi  os.FileInfo
		sum string
	}

	mu sync.Mutex
	// mu protects the following.
	path        string
	state       core.PluginState
	reason      string
	info        shared.Info
	sum         string
	gen         *generation // the running process; nil unless running
	restarts    int
	requested   int         // the operator's restarts done (restartRequest.ticket)
	crashes     []time.Time // within the crash window, oldest first
	nextAttempt time.Time
}

func newSupervised(p *Plugins, c Config) *supervised {
	return &supervised{
		p:        p,
		name:     c.Name,
		conf:     c,
		builtin:  IsBuiltin(c.Name),
		log:      p.log.With("plugin", c.Name),
		restartC: make(chan restartRequest),
		path:     filepath.Join(p.opts.Dir, ExecutablePrefix+c.Name),
		state:    core.PluginStarting,
	}
}

// describe names the plugin in errors: its path, or its name.
func (s *supervised) describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == "" {
		return s.name
	}
	return s.path
}

func (s *supervised) status() core.PluginStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := core.PluginStatus{
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
	st.Path = s.path
	if s.state == core.PluginRestarting {
		t := s.nextAttempt
		st.NextAttempt = &t
	}
	if s.gen != nil {
		st.PID = s.gen.pid
	}
	return st
}

// setState records a state; s.mu must be held.
func (s *supervised) setState(state core.PluginState, reason string) {
	s.state, s.reason = state, reason
	if testHookSetState != nil {
		testHookSetState(s.name, state, reason)
	}
	s.p.changed()
}

// testHookSetState, when set (by a test), sees every state a plugin is put
// in, under its mu.
var testHookSetState func(name string, state core.PluginState, reason string)

// environment returns what serves the plugin's types now.
func (s *supervised) environment() (shared.Environment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case core.PluginRunning:
		return s.gen.wrapped, nil
	case core.PluginStarting:
		return nil, fmt.Errorf("%w: plugin %s is starting", shared.ErrUnavailable, s.name)
	case core.PluginRestarting:
		return nil, fmt.Errorf("%w: plugin %s is restarting (next attempt in %v): %s", shared.ErrUnavailable, s.name,
			time.Until(s.nextAttempt).Round(time.Millisecond), s.reason)
	case core.PluginFailed:
		return nil, fmt.Errorf("%w: plugin %s has failed: %s", shared.ErrUnavailable, s.name, s.reason)
	case core.PluginRefused:
		return nil, fmt.Errorf("%w: plugin %s was refused: %s", shared.ErrUnavailable, s.name, s.reason)
	default:
		return nil, fmt.Errorf("plugin %s: %w", s.name, shared.ErrPluginExited)
	}
}

// run launches the plugin and supervises it until ctx ends. It restarts a
// process that dies, with backoff, and serves operator restarts. A first
// launch that fails leaves the plugin failed (or refused) until Restart.
func (s *supervised) run(ctx context.Context) {
	g, _ := s.launch(ctx, launchFirst)
	s.p.launched()
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
				s.leave(g)
			}
			s.mu.Lock()
			s.gen = nil
			s.setState(core.PluginStopped, "")
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
			if g, err = s.launch(ctx, launchRetry); err != nil && ctx.Err() == nil && !isRefusal(err) {
				scheduleAfterCrash(err.Error())
			}

		case req := <-s.restartC:
			s.mu.Lock()
			answered := req.ticket < s.requested
			s.mu.Unlock()
			if answered {
				// Asked for while the last one was under way, and
				// sent only after its end: it joins it.
				req.reply <- s.status()
				continue
			}
			stopRetry()
			g = s.restartOnRequest(ctx, g, req)
		}
	}
}

// restartRequest is an operator's restart: reply gets the plugin's status
// after it; ticket is how many such restarts were done when it was asked
// for (supervised.requested).
type restartRequest struct {
	reply  chan core.PluginStatus
	ticket int
}

// restartOnRequest stops g, if any, closes the circuit and launches the
// plugin again, for req and every request made while it was under way,
// which join it: a second restart would end the sessions created after
// this one. A request made after it, found waiting, is a restart of its
// own. It returns the new generation.
func (s *supervised) restartOnRequest(ctx context.Context, g *generation, req restartRequest) *generation {
	for {
		if g != nil {
			s.log.Info("restarting the plugin on request; its sessions end", "pid", g.pid)
			g.stop(ctx, core.ReasonPluginRestarted)
			g = nil
		}
		s.mu.Lock()
		s.crashes = nil // the operator closes the circuit
		s.mu.Unlock()
		g, _ = s.launch(ctx, launchOnRequest)
		s.mu.Lock()
		s.requested++
		done := s.requested
		s.mu.Unlock()
		st := s.status()
		req.reply <- st
		next := false
		for !next {
			select {
			case r := <-s.restartC:
				if r.ticket < done {
					r.reply <- st
					continue
				}
				req, next = r, true
			default:
				return g
			}
		}
	}
}

// leave ends the generation as the server stops: a durable one holding
// sessions is left running, with them, when the server detaches; any
// other is stopped (a plugin with no session to keep has nothing to wait
// for the next server with: that one starts its own).
func (s *supervised) leave(g *generation) {
	if g.durable && s.p.detaching() && s.keepsSessions(g) {
		g.detach()
		s.log.Info("plugin left running for the next server", "pid", g.pid, "orphan_timeout", s.p.opts.OrphanTimeout)
		return
	}
	g.stop(s.p.stopContext(), "")
}

// keepsSessionsTimeout bounds the question keepsSessions asks a plugin.
const keepsSessionsTimeout = time.Second

// keepsSessions reports whether g's process holds sessions, or may: a
// plugin that does not answer within keepsSessionsTimeout is assumed to.
func (s *supervised) keepsSessions(g *generation) bool {
	ctx, cancel := context.WithTimeout(s.p.stopContext(), keepsSessionsTimeout)
	defer cancel()
	list, err := g.wrapped.Sessions(ctx)
	if err != nil {
		s.log.Debug("could not list the plugin's sessions; leaving it running", "pid", g.pid, "error", err)
		return true
	}
	return len(list) > 0
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
		s.setState(core.PluginFailed, fmt.Sprintf("crashed %d times in %v; circuit open: run 'ptyhost plugins restart %s'", n, o.CrashWindow, s.name))
		s.log.Error("plugin crashed too often; not restarting it until an operator does", "crashes", n, "window", o.CrashWindow, "last", why)
		return 0, false
	}
	delay := backoff(o.RestartBackoff, o.MaxRestartBackoff, n)
	s.nextAttempt = now.Add(delay)
	s.setState(core.PluginRestarting, why)
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

// launchKind says why the supervisor launches a plugin.
type launchKind int

const (
	launchFirst     launchKind = iota // at Load
	launchRetry                       // after a crash or a failed retry
	launchOnRequest                   // an operator's restart
)

// launch starts a new process and records the outcome in s's state: the
// generation and running, or nil, an error, and failed or refused. A
// retry that fails but for a refusal stays starting instead, for the
// supervisor to count as a crash (crashed), which says restarting, or
// failed once the circuit opens: failed in between would tell WaitType,
// and whoever reads the state, that the plugin is given up on while
// another attempt is due. The first launch takes up the process Load
// reattached to instead, if there is one.
func (s *supervised) launch(ctx context.Context, kind launchKind) (*generation, error) {
	again := kind != launchFirst
	s.mu.Lock()
	s.gen = nil
	s.setState(core.PluginStarting, "")
	if again {
		s.restarts++
	}
	s.mu.Unlock()

	var g *generation
	var err error
	if s.adopted != nil && !again {
		g = s.adopted
	} else {
		g, err = s.start(ctx)
	}
	if err == nil {
		// Types are known only now; a restarted plugin may serve other
		// types than before.
		if cerr := s.p.claim(s, g.info.Types); cerr != nil {
			g.stop(ctx, "")
			g, err = nil, &refusal{cerr.Error()}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil && ctx.Err() != nil {
		s.setState(core.PluginStopped, "")
		s.log.Info("plugin start abandoned: the plugins are stopping")
		return nil, err
	}
	if err != nil && kind == launchRetry && !isRefusal(err) {
		s.log.Warn("plugin restart failed", "path", s.path, "reason", err)
		return nil, err
	}
	if err != nil {
		state := core.PluginFailed
		if isRefusal(err) {
			state = core.PluginRefused
		}
		s.setState(state, err.Error())
		s.log.Error("plugin "+string(state), "path", s.path, "reason", err)
		return nil, err
	}
	s.gen, s.info = g, g.info
	s.setState(core.PluginRunning, "")
	switch {
	case g.reattached:
		s.log.Info("plugin running: reattached", "version", g.info.Version, "types", g.info.Types, "pid", g.pid)
	case again:
		s.log.Info("plugin restarted", "version", g.info.Version, "types", g.info.Types, "pid", g.pid, "restarts", s.restarts)
	default:
		s.log.Info("plugin loaded", "version", g.info.Version, "types", g.info.Types, "pid", g.pid)
	}
	return g, nil
}
