package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
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
	// why is "signal", "stop request", whyLost or "failed" (the server
	// ended otherwise: a failed start, a listener error).
	why string
}

// whyLost is the stop reason of a node that lost its lease; whyTakenOver
// that of a single server whose claim another server took over.
const (
	whyLost      = "lease lost"
	whyTakenOver = "database taken over"
)

// exitLost is the exit status of a node that stopped for whyLost:
// EX_TEMPFAIL of sysexits.h, "try again later". A stop that the operator
// asked for (a signal, 'ptyhost stop') exits 0, and a supervisor that
// restarts a failed service (systemd's Restart=on-failure) leaves it
// stopped; this one is no such stop. A node whose lease ran out while the
// database was unreachable must come back once it is reachable again, to
// take its sessions up (docs/design.md, "Partitions"); with status 0 it
// stayed down for good after any outage longer than its lease.
//
// A single server whose claim another server took over exits 0, and stays
// down: another server owns the database and serves its sessions now.
// Started again over and over, this one would be refused while the other
// runs, and would claim the database the moment the other stopped for a
// restart, recording the other's sessions lost and hanging them up.
const exitLost = 75

// stopper collects the reasons a server stops: a signal (its parent ctx
// ends), a stop request over the API, or the loss of the database's
// ownership. The first reason wins; ctx ends with it.
type stopper struct {
	// ctx is done once the server is to stop.
	ctx    context.Context
	cancel context.CancelCauseFunc
	parent context.Context
	// hangUpOnStop is --hang-up-on-stop: every stop hangs up, once the
	// sessions are taken up (taken, tookUp).
	hangUpOnStop bool
	taken        atomic.Bool

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
func (s *stopper) onLost(lost <-chan struct{}, node bool, log *slog.Logger) {
	select {
	case <-lost:
		if !node {
			log.Error("another server took the database over: stopping, leaving the sessions running; " +
				"it exits with status 0, and is not to be started again while the other serves")
			s.set(stopReason{why: whyTakenOver})
			return
		}
		log.Error("this node lost its lease (taken over, or the database unreachable past the lease): stopping, leaving the sessions running; " +
			"it exits with status 75, for its supervisor to start it again")
		s.set(stopReason{why: whyLost})
	case <-s.ctx.Done():
	}
}

// tookUp records that the server has taken up the sessions its plugins
// kept (Reconcile): from now on --hang-up-on-stop hangs them up at a stop
// that is a signal or a failure. Before, they are not this server's to
// end: a start refused because the database knows none of them (a
// mistyped --db) must leave them running, whatever the stop says.
func (s *stopper) tookUp() { s.taken.Store(true) }

// request returns why the server stops: the recorded reason, else a
// signal if the parent context ended, else a failure, which it records.
func (s *stopper) request() stopReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason == nil {
		// Recorded, so that a stop request that comes now is answered
		// with what really happens.
		r := stopReason{hangUp: s.hangUpOnStop && s.taken.Load(), why: "failed"}
		if s.parent.Err() != nil {
			r.why = "signal"
		}
		s.reason = &r
	}
	return *s.reason
}

// shutdown is how serve ends, whatever ends it: serve fills it in as it
// starts (what is nil was not made) and runs it once, on its way out.
type shutdown struct {
	c   serveConfig
	log *slog.Logger
	out stdio
	db  *gormstore.DB
	// owned is the claim or the lease, once made; stop, plugins, m and
	// srv are the server's, once made.
	owned   *ownership
	stop    *stopper
	plugins *pluginhost.Plugins
	m       *core.Manager
	srv     *http.Server
}

// releaseShare is the part of --shutdown-timeout kept for giving the
// claim or the lease up, at most maxReleaseShare: the sessions' part
// (leave) may take the rest, as a hang-up whose clients are slow to go
// does, and the release, one statement, still gets its chance, so that
// the next server need not wait for the lease.
const (
	releaseShare    = 5 // a fifth
	maxReleaseShare = time.Second
)

// run stops the server, all of it within one --shutdown-timeout from
// now: it leaves the sessions as the stop's reason says (leave), gives
// the claim or the lease up and closes the database; then it logs and,
// unless the start failed, prints that the server stopped, which it now
// has. The database's outage cannot stretch the stop: each step gets
// what is left of the one deadline. It returns err, the server's, or
// exitError{exitLost} for a server that stopped because it lost the
// database.
func (s *shutdown) run(ctx context.Context, err error) error {
	c, log := s.c, s.log
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.shutdownTimeout)
	defer cancel()
	var r stopReason
	var what string
	if s.stop != nil {
		r = s.stop.request()
		deadline, _ := sctx.Deadline()
		lctx, cancel := context.WithDeadline(sctx, deadline.Add(-min(c.shutdownTimeout/releaseShare, maxReleaseShare)))
		what = leave(lctx, c, log, r, s.srv, s.m, s.plugins)
		cancel()
		s.stop.cancel(nil)
	}
	if s.owned != nil {
		s.owned.release(sctx)
	}
	if cerr := s.db.Close(); cerr != nil {
		log.Warn("closing the database", "err", cerr)
	}
	if s.stop != nil {
		log.Info("stopped; "+what, "why", r.why)
		if r.why != "failed" {
			fmt.Fprintf(s.out.out, "ptyhost: stopped; %s\n", what)
		}
	}
	if err == nil && r.why == whyLost {
		return exitError{exitLost}
	}
	return err
}

// leave stops the server within ctx, as r says: it stops accepting
// requests (srv, if serving) and at once either hangs every session up
// and stops the plugins, or detaches from the sessions and leaves the
// plugins running with them. m is nil when the manager was not made. It
// logs the stop and returns what became of the sessions.
func leave(sctx context.Context, c serveConfig, log *slog.Logger, r stopReason, srv *http.Server, m *core.Manager, plugins *pluginhost.Plugins) string {
	log.Info("shutting down", "why", r.why, "hang_up", r.hangUp, "timeout", c.shutdownTimeout)
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
	return what
}
