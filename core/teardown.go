package core

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// This file ends sessions: DestroySession and the idle timeout take one out
// of the map and tear it down; Close tears them all down; Detach stops the
// manager and leaves them all running in their plugins.

// killTimeout bounds how long destruction waits for a killed session's
// output to end before it cleans up anyway.
const killTimeout = 10 * time.Second

// stopGrace is how long past its deadline a stop still waits for the
// sessions' output to end.
const stopGrace = time.Second

// detachWait bounds how long a stop waits for the clients to detach
// (within its deadline): a client that no longer reads, such as an
// embedder's Attachment nobody calls Next on, must not take the time the
// plugins' shutdown and the store's last writes need. A variable for
// the tests.
var detachWait = 5 * time.Second

// DestroySession ends a session: it closes every client with "Session
// destroyed", kills the process, has the plugin clean up, and records the
// session as TERMINATED. A failing step is logged and destruction goes on;
// a plugin's cleanup is waited for within ctx, and one that has not
// returned by then goes on in the background (a create of the same id
// waits for it). An unknown or already destroyed id is not an error; one being destroyed
// (by another call, or its idle timeout) is waited for, within ctx, and is
// not an error either when ctx ends first: it is being destroyed.
//
// In a cluster, an id not live here whose record is ERROR node_lost (its
// node is away, and no node runs it) is recorded TERMINATED, so that the
// node, should it come back with the session, hangs it up rather than
// taking it up again (destroyNodeLost); the error is then the store's.
//
// A session still starting has its plugin's spawn cancelled; its create
// fails (ErrSessionNotFound) and records it TERMINATED, which
// DestroySession waits for, within ctx and at most killTimeout.
func (m *Manager) DestroySession(ctx context.Context, id string) error {
	m.mu.Lock()
	s := m.sessions[id]
	if s == nil {
		ch := m.ending[id]
		m.mu.Unlock()
		if ch != nil {
			select {
			case <-ch:
			case <-ctx.Done():
			}
			return nil
		}
		return m.destroyNodeLost(ctx, id)
	}
	done := m.takeOutLocked(s)
	m.mu.Unlock()
	defer done()
	m.teardown(ctx, s, CloseNormal, CloseReasonDestroyed, "")
	// A session destroyed while starting is recorded by its create, once
	// the spawn the teardown cancelled has returned: wait for that (within
	// ctx, and killTimeout at most, as for a kill), so that the session
	// reads as ended when this returns.
	t := time.NewTimer(killTimeout)
	defer t.Stop()
	select {
	case <-s.created:
	case <-ctx.Done():
	case <-t.C:
		s.log.Warn("the create of the session destroyed while starting has not returned; its plugin does not end the spawn")
	}
	return nil
}

// takeOutLocked takes s out of the map to be torn down, and returns what
// to call when the teardown is done. Until then the id is ending: the
// destroyed session still writes its record, so a session created under
// the same id waits, lest the old one's late writes land on the
// new one's row (CreateSession). A session destroyed while starting is
// recorded and cleaned up by its create, so its id ends when that create
// has returned, which done does not wait for (its cancelled spawn may end
// late, in a plugin that does not watch its context). m.mu is held.
func (m *Manager) takeOutLocked(s *session) (done func()) {
	delete(m.sessions, s.id)
	ch := make(chan struct{})
	m.ending[s.id] = ch
	end := func() {
		m.mu.Lock()
		if m.ending[s.id] == ch {
			delete(m.ending, s.id)
		}
		m.mu.Unlock()
		close(ch)
	}
	return func() {
		select {
		case <-s.created:
			end()
		default:
			go func() {
				<-s.created
				end()
			}()
		}
	}
}

// teardown destroys s, which the caller has taken out of the map.
func (m *Manager) teardown(ctx context.Context, s *session, code int, reason, statusReason string) {
	s.mu.Lock()
	prev := s.state
	if prev == stateDestroyed {
		s.mu.Unlock()
		return
	}
	s.state = stateDestroyed
	s.closeCode, s.closeReason = code, reason
	// On shutdown, clients get the session's last output and its exit
	// before the close; a destroyed session just closes them.
	s.drain = code == CloseGoingAway && (prev == stateRunning || prev == stateExited)
	if s.drain && prev == stateExited {
		// Ended on its own before the shutdown: what its clients have
		// not read yet, its exit, and the close that says so, as leave
		// gives them.
		s.closeCode, s.closeReason = CloseNormal, CloseReasonExited
	}
	for _, t := range []*time.Timer{s.idleTimer, s.lingerTimer, s.keepAllTimer} {
		if t != nil {
			t.Stop()
		}
	}
	s.idleTimer, s.lingerTimer, s.keepAllTimer = nil, nil, nil
	if prev == stateRunning && s.rec.Status != StatusError {
		// Recorded ended before the clients are told (wakeAll, under the
		// same lock): one that looks the session up on its close must not
		// find it ACTIVE while the kill and the cleanup take their time.
		// What follows (an exit's ERROR, the end below) merges after it.
		status, reason, zero := StatusTerminated, statusReason, 0
		s.rec.Status, s.rec.StatusReason, s.rec.ActiveConnections = status, reason, zero
		s.changed(SessionUpdate{Status: &status, StatusReason: &reason, ActiveConnections: &zero})
	}
	s.wakeAll()
	if s.cancelStart != nil {
		// A create's start, or a restart's: the plugin may take long, or
		// never answer.
		s.cancelStart(errStartAbandoned)
	}
	if prev == stateStarting {
		// CreateSession sees the state, records it and cleans up what it
		// spawned (its spawn is cancelled, above).
		s.rec.Status, s.rec.StatusReason = StatusTerminated, statusReason
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()

	if prev == stateExited {
		m.forgetExited(s)
	}
	if prev == stateRunning {
		// Within ctx's deadline if that is sooner (shutdown's): the
		// plugin shortens its grace between SIGHUP and SIGKILL to fit.
		wait := killTimeout
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait)
		if err := s.pty.Kill(kctx); err != nil {
			s.log.Warn("kill failed; destroying anyway", "err", err)
		}
		select {
		case <-s.pumpDone:
		case <-kctx.Done():
			s.log.Warn("session output did not end after kill; cleaning up anyway")
			s.mu.Lock()
			s.drain = false // no exit is coming: close the clients now
			s.closedEarly = true
			s.wakeAll()
			s.mu.Unlock()
		}
		cancel()
	}
	if !m.deps.releases.releaseWithin(ctx, s) {
		s.log.Warn("the plugin's cleanup of the session had not returned by the deadline; destroying anyway, and it goes on in the background")
	}

	zero := 0
	s.mu.Lock()
	if prev == stateRunning && s.rec.Status != StatusError {
		// Ended by this teardown. A session that had exited before it
		// keeps its status and reason, and an abnormal end stays recorded
		// as such.
		s.rec.Status, s.rec.StatusReason = StatusTerminated, statusReason
	}
	s.rec.ActiveConnections = 0
	status, recReason := s.rec.Status, s.rec.StatusReason
	s.changed(SessionUpdate{Status: &status, StatusReason: &recReason, ActiveConnections: &zero})
	s.mu.Unlock()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	if err := m.writer.flush(fctx); err != nil {
		s.log.Warn("recording the destroyed session failed; will retry", "err", err)
	}
	cancel()
	s.log.Info("session destroyed")
	m.publish(Event{Type: SessionDestroyed, SessionID: s.id})
}

// Close hangs up every session (each attached client receives the session's
// remaining output, its exit, and close code 1001, or 1000 with
// CloseReasonExited for a session that had exited), records their status,
// waits — within ctx — for the clients to detach (5 s at most: a client
// that no longer reads is left behind) and for every goroutine the
// manager started (past ctx it returns an error, and a session whose
// output has not ended by then, its plugin stuck, is the plugin shutdown's
// to end and the next server's to record; so is a plugin's cleanup of a
// session that has not returned). It is safe to call more than
// once, and after Detach; later calls do nothing and return the first
// call's result.
func (m *Manager) Close(ctx context.Context) error {
	m.closeOnce.Do(func() { m.closeErr = m.stop(ctx, m.hangUpAll) })
	return m.closeErr
}

// Detach stops the manager without ending its sessions, for a server that
// stops to be restarted or upgraded: the plugins keep the sessions, and
// the next server on the same database takes them up again (Reconcile).
// New sessions and attachments are refused; every attached client is
// closed with code 1012 (CloseRestart) and CloseReasonRestart, and should
// reconnect; each running session's PTY is detached (shared.Detacher), so
// the plugin keeps the session, and closed, which after Detach releases
// the server's side only; and the records stay as they are (ACTIVE,
// IDLE) but for active_connections, 0. Nothing is recorded about a
// session's end, even one that ends meanwhile: the plugin keeps that too.
// A session whose PTY cannot be detached (an in-process environment)
// cannot outlive the server and is hung up as Close does.
//
// Like Close, it waits within ctx for the clients to detach and for every
// goroutine the manager started, and flushes the store writes. Close and
// Detach share one run: whichever is called first stops the manager, and
// later calls of either do nothing and return its result.
func (m *Manager) Detach(ctx context.Context) error {
	m.closeOnce.Do(func() {
		m.byDetach.Store(true)
		m.closeErr = m.stop(ctx, m.detachAll)
	})
	return m.closeErr
}

// Detached reports whether Detach, not Close, stopped the manager: its
// sessions go on for the next server. It is set before Subscribe's
// channels close.
func (m *Manager) Detached() bool { return m.byDetach.Load() }

// stop marks the manager closed, takes every session out of the map and
// ends them with end, then waits for the clients and the goroutines and
// writes what is left.
func (m *Manager) stop(ctx context.Context, end func(context.Context, []*session)) error {
	m.mu.Lock()
	m.closed = true
	all := make([]*session, 0, len(m.sessions))
	for id, s := range m.sessions {
		all = append(all, s)
		delete(m.sessions, id)
	}
	m.mu.Unlock()

	end(ctx, all)
	m.awaitCreates(ctx, all)

	// Give the clients the time (within ctx, and detachWait) to receive
	// their sessions' last output, exit and close, and to detach.
	m.mu.Lock()
	var detached chan struct{}
	if m.attachments > 0 {
		detached = make(chan struct{})
		m.detached = detached
	}
	m.mu.Unlock()
	var undetached error
	if detached != nil {
		timer := time.NewTimer(detachWait)
		select {
		case <-detached:
		case <-timer.C:
			m.log.Warn("clients did not all detach; stopping without them", "waited", detachWait, "attached", m.attachmentCount())
		case <-ctx.Done():
			n := m.attachmentCount()
			m.log.Warn("clients did not all detach before the shutdown deadline", "attached", n)
			undetached = fmt.Errorf("core: %d clients had not detached by the deadline", n)
		}
		timer.Stop()
	}

	m.cancel()
	// Within ctx too: a pump whose plugin never ends its output would
	// hold the stop, and the caller's plugin shutdown, which ends that
	// output, comes after it. What such a pump records later is not
	// written; the next server's Reconcile records its session.
	waited := make(chan struct{})
	go func() {
		m.wg.Wait()
		close(waited)
	}()
	var late error
	select {
	case <-waited:
	case <-ctx.Done():
		// The clients may have had all of it: pumps that are ending
		// anyway get a moment more.
		select {
		case <-waited:
		case <-time.After(stopGrace):
			late = errors.New("core: some sessions' output had not ended by the deadline; their end is not recorded")
		}
	}
	err := m.writer.flush(ctx)
	unreleased := m.deps.releases.settle(ctx, m.byDetach.Load())
	m.events.close()
	if err != nil {
		err = fmt.Errorf("core: writing final session status: %w", err)
	}
	return errors.Join(undetached, late, err, unreleased)
}

// awaitCreates waits, within ctx and killTimeout, for the creates of the
// sessions of all that were starting: each records its session once its
// cancelled start returns (destroyedWhileStarting), through the writer
// that stop ends next, so that the row is not left STARTING.
func (m *Manager) awaitCreates(ctx context.Context, all []*session) {
	t := time.NewTimer(killTimeout)
	defer t.Stop()
	for _, s := range all {
		select {
		case <-s.created:
		case <-t.C:
			m.log.Warn("sessions' creates had not returned when their starts were cancelled; their rows may stay STARTING until the next server")
			return
		case <-ctx.Done():
			return
		}
	}
}

// hangUpAll tears every session of all down, in parallel: Close's end.
func (m *Manager) hangUpAll(ctx context.Context, all []*session) {
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() {
			m.teardown(ctx, s, CloseGoingAway, CloseReasonShutdown, ReasonServerShutdown)
		})
	}
	wg.Wait()
}

// detachAll leaves every session of all to its plugin, in parallel:
// Detach's end.
func (m *Manager) detachAll(ctx context.Context, all []*session) {
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { m.leave(ctx, s) })
	}
	wg.Wait()
}

// leave closes the clients of s, which the caller has taken out of the
// map, with CloseRestart, and ends the server's part in it without ending
// it: a running session's PTY is detached (then closed, which after
// Detach does not reach the plugin) and its pump stopped. A session
// starting, or whose PTY cannot be detached, is torn down instead: it
// cannot outlive the server.
func (m *Manager) leave(ctx context.Context, s *session) {
	s.mu.Lock()
	prev := s.state
	d, detachable := s.pty.(shared.Detacher)
	if prev == stateStarting || (prev == stateRunning && !detachable) {
		s.mu.Unlock()
		m.teardown(ctx, s, CloseGoingAway, CloseReasonShutdown, ReasonServerShutdown)
		return
	}
	if prev == stateDestroyed {
		s.mu.Unlock()
		return
	}
	s.state = stateDestroyed
	s.detached = true
	s.closeCode, s.closeReason = CloseRestart, CloseReasonRestart
	s.drain = false
	if prev == stateExited {
		// Ended: its clients get the rest of its output and its exit, as
		// they would have if the server stayed.
		s.closeCode, s.closeReason = CloseNormal, CloseReasonExited
		s.drain = true
	}
	for _, t := range []*time.Timer{s.idleTimer, s.lingerTimer, s.keepAllTimer} {
		if t != nil {
			t.Stop()
		}
	}
	s.idleTimer, s.lingerTimer, s.keepAllTimer = nil, nil, nil
	s.rec.ActiveConnections = 0
	s.wakeAll() // the clients close; a pump waiting for one stops
	s.mu.Unlock()

	zero := 0
	s.changed(SessionUpdate{ActiveConnections: &zero})
	if prev == stateExited {
		// Its end is recorded, or is on its way (exitReleases).
		m.forgetExited(s)
		return
	}
	// The read the pump is in fails once the PTY is detached; the pump
	// sees detached and ends without recording anything. Close after
	// Detach releases the server's side only (shared.Detacher); a PTY
	// whose Detach could do nothing (a plugin that cannot keep sessions,
	// behind pluginhost) ends the session there, which ends the read.
	d.Detach()
	s.release()
	select {
	case <-s.pumpDone:
		s.log.Info("session left running for the next server")
	case <-ctx.Done():
		s.log.Warn("session output did not end after detaching; stopping anyway")
	}
}
