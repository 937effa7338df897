package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/pluginhost"
)

// How the server stops. By default a stop leaves every session running:
// the manager detaches from them (clients get close code 1012, "reconnect")
// and the plugin processes keep them, reading their output into their
// buffers, until the next server on this data directory reattaches or the
// orphan timeout ends them. --hang-up-on-stop, or a stop request that asks
// for it ('ptyhost stop --hang-up'), hangs every session up instead, as a
// server always did before sessions outlived it.

// stopReason says why the server stops and what becomes of the sessions.
type stopReason struct {
	hangUp bool
	// why is "signal", "stop request", "database lost" or "failed" (the
	// server ended otherwise: a failed start, a listener error).
	why string
}

// stopper collects the reasons a server stops: a signal (its parent ctx
// ends), a stop request over the API, or the loss of the database's
// ownership. The first reason wins; ctx ends with it.
type stopper struct {
	// ctx is done once the server is to stop.
	ctx    context.Context
	cancel context.CancelCauseFunc
	parent context.Context
	// hangUpOnStop is --hang-up-on-stop: every stop hangs up.
	hangUpOnStop bool

	// mu protects the following.
	mu     sync.Mutex
	reason *stopReason
}

func newStopper(parent context.Context, hangUpOnStop bool) *stopper {
	ctx, cancel := context.WithCancelCause(parent)
	return &stopper{ctx: ctx, cancel: cancel, parent: parent, hangUpOnStop: hangUpOnStop}
}

// set records r unless a reason is recorded already, and ends s.ctx.
func (s *stopper) set(r stopReason) stopReason {
	s.mu.Lock()
	if s.reason == nil {
		s.reason = &r
	}
	r = *s.reason
	s.mu.Unlock()
	s.cancel(fmt.Errorf("stopping: %s", r.why))
	return r
}

// requestStop is api.Options.Stop: it asks the server to stop as a signal
// would, hanging the sessions up when hangUp is set (or the server hangs
// up on every stop), and reports whether the stop hangs them up.
func (s *stopper) requestStop(hangUp bool) bool {
	return s.set(stopReason{hangUp: hangUp || s.hangUpOnStop, why: "stop request"}).hangUp
}

// onLost stops the server, leaving the sessions running, if lost closes
// before the server stops otherwise: another server has taken the
// database over, and two servers must not both manage its sessions. The
// sessions stay for whichever server comes back on this data directory;
// hanging them up would write their end into records another server owns.
func (s *stopper) onLost(lost <-chan struct{}, log *slog.Logger) {
	select {
	case <-lost:
		log.Error("this server no longer owns the database (another server took it over, or it was unreachable past the lease): stopping, leaving the sessions running")
		s.set(stopReason{why: "database lost"})
	case <-s.ctx.Done():
	}
}

// request returns why the server stops: the recorded reason, else a
// signal if the parent context ended, else a failure, which it records.
func (s *stopper) request() stopReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason == nil {
		// Recorded, so that a stop request that comes now is answered
		// with what really happens.
		r := stopReason{hangUp: s.hangUpOnStop, why: "failed"}
		if s.parent.Err() != nil {
			r.why = "signal"
		}
		s.reason = &r
	}
	return *s.reason
}

// leave stops the server within --shutdown-timeout, as r says: it stops
// accepting requests (srv, if serving) and at once either hangs every
// session up and stops the plugins, or detaches from the sessions and
// leaves the plugins running with them. m is nil when the manager was not
// made. It logs, and for a requested stop prints, what became of the
// sessions.
func leave(ctx context.Context, c serveConfig, log *slog.Logger, out stdio, r stopReason, srv *http.Server, m *core.Manager, plugins *pluginhost.Plugins) {
	log.Info("shutting down", "why", r.why, "hang_up", r.hangUp, "timeout", c.shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownTimeout)
	defer cancel()
	// Stop accepting and end the sessions' streams at once, both within
	// the one deadline: http.Server.Shutdown may wait for a connection that
	// has sent no request yet.
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		if srv == nil {
			return
		}
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("http shutdown", "err", err)
			srv.Close()
		}
	}()
	var what string
	if r.hangUp {
		if m != nil {
			if err := m.Close(sctx); err != nil {
				log.Warn("closing sessions", "err", err)
			}
		}
		<-httpDone
		plugins.Shutdown(sctx)
		what = "every session was hung up"
	} else {
		if m != nil {
			if err := m.Detach(sctx); err != nil {
				log.Warn("detaching from the sessions", "err", err)
			}
		}
		<-httpDone
		plugins.Detach(sctx)
		what = fmt.Sprintf("sessions left running for the next server; they end after the orphan timeout (%v) if none starts", c.orphanTimeout)
	}
	log.Info("stopped; "+what, "why", r.why)
	if r.why != "failed" {
		fmt.Fprintf(out.out, "ptyhost: stopped; %s\n", what)
	}
}
