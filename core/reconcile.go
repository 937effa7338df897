package core

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// ReasonServerLost is recorded for sessions that were live when a previous
// server process stopped without ending them, and that no plugin kept.
const ReasonServerLost = "server_lost: the server stopped without ending the session"

const (
	// adoptTimeout bounds taking up one session a plugin kept: the
	// plugin's Attach.
	adoptTimeout = 10 * time.Second
	// catchUpTimeout bounds how long Reconcile waits for the sessions it
	// took up to read the output their plugins kept, all together.
	catchUpTimeout = 10 * time.Second
)

// errNowLive says a session id Reconcile was taking up became live in the
// manager meanwhile: the record is that session's now.
var errNowLive = errors.New("the session id is live in this server")

// Reconcile brings the store in line with what still runs, once at
// start-up, before sessions are created. It returns how many sessions it
// recorded as lost.
//
// A plugin process keeps its sessions when the server that held it stops
// or dies (see shared.Keeper), and a Dispatcher that reattached to such
// processes lists those sessions (SurvivorSource). Every session the
// store holds as STARTING, ACTIVE or IDLE that this manager is not running
// is then either taken up again or lost:
//
//   - kept by a plugin: it is live again. Its ring begins at the oldest
//     byte the plugin kept, so a client resuming at an offset the ring
//     holds gets exactly the bytes from there, and one asking for an older
//     offset gets a reset and the replay. It is ACTIVE with no client (and
//     its idle timer, if it has one, starts now), and a SessionResumed
//     event is published. A session that exited while no server ran is
//     taken up too: its kept output and then its exit go through the
//     usual path, so its record gets the real exit code and signal.
//     It can be restarted in place (RestartSession), from its record.
//   - kept by no plugin (the plugin is gone, or predates kept sessions),
//     or kept but the plugin fails to hand it over: it is recorded as
//     ERROR with ReasonServerLost, whatever the store said.
//
// A session a plugin kept that the store does not hold as live (unknown,
// or recorded as ended) is hung up: killed and closed. But when the
// plugins kept sessions and the store holds the record of none of them
// (a new or emptied database, or the wrong one), Reconcile touches
// nothing and returns an *UnknownKeptError, unless
// Options.HangUpUnknownKept is set (checkKeptKnown).
//
// Reconcile waits, within ctx and a bound, until each session taken up has
// read what its plugin kept, so that clients resuming right after it
// returns find their offsets in the ring. A store that fails is an error
// wrapping ErrStoreUnavailable, as for the other methods.
//
// One database serves one ptyhost server: a second server reconciling
// would take the first one's sessions (core/gormstore's Claim refuses
// it). A node of a cluster (Options.NodeName) shares the database with
// the other nodes and reconciles only the sessions recorded with its name;
// the node registry (core/gormstore's RegisterNode) keeps two processes
// from running under one name. A node also takes up the sessions its
// plugins kept that another node recorded as node_lost while it was away
// (reclaimNodeLost); those no plugin kept stay node_lost, and those whose
// environment is gone are hung up. It takes up the same way the sessions
// its plugins kept whose records name no node: those of the single server
// it was, on its data directory, before the database served a cluster.
func (m *Manager) Reconcile(ctx context.Context) (int, error) {
	survivors, foreign := m.survivors(ctx)
	rc := &reconciling{types: make(map[string]string), taken: make(map[string]shared.Keeper), strays: foreign}
	for _, cands := range survivors {
		for _, sv := range cands {
			rc.gate.listed(sv)
		}
	}
	for _, sv := range foreign {
		rc.gate.listed(sv)
	}
	recs, err := m.store.ListSessions(ctx, StatusStarting, StatusActive, StatusIdle)
	if err != nil {
		return 0, fmt.Errorf("core: listing sessions to reconcile: %w", storeFailed(err))
	}
	// Before any session is taken up, recorded lost or hung up: a store
	// that knows none of the kept sessions would have them all hung up.
	if err := m.checkKeptKnown(ctx, survivors, recs); err != nil {
		return 0, err
	}
	lost, resumed := 0, 0
	var caughtUp []<-chan struct{}
	for _, rec := range recs {
		if rec.Node != m.opts.NodeName && m.opts.NodeName != "" {
			// Another node's session, live or not: its own to take up. One
			// of no node, a single server's, is this node's if its plugins
			// kept it (reclaimNodeLost).
			continue
		}
		cands := survivors[rec.ID]
		delete(survivors, rec.ID)
		if m.isLive(rec.ID) {
			continue
		}
		sv, kept, err := m.pickSurvivor(ctx, rec, cands, rc)
		if err != nil {
			return lost, fmt.Errorf("core: reconciling session %q: %w", rec.ID, err)
		}
		if kept {
			ch, err := m.adopt(ctx, rec, sv, &rc.gate)
			switch {
			case err == nil:
				rc.taken[rec.ID] = sv.Keeper
				resumed++
				caughtUp = append(caughtUp, ch)
				continue
			case errors.Is(err, errNowLive):
				continue
			case errors.Is(err, ErrClosed):
				return lost, fmt.Errorf("core: reconciling session %q: %w", rec.ID, err)
			}
			// Lost: hung up below with the kept sessions nobody claims, so
			// that it does not run on unknown in a plugin this server holds.
			rc.notHandedOver(m, sv, err)
		}
		if err := m.recordLost(ctx, rec.ID); err != nil {
			return lost, fmt.Errorf("core: reconciling session %q: %w", rec.ID, err)
		}
		m.log.Warn("session was left live by a previous server and no plugin kept it; recorded as ERROR", "session_id", rec.ID)
		lost++
	}
	// Sessions another node recorded as node_lost while this one was
	// away are this node's again if its plugins kept them.
	reclaimed, chans, err := m.reclaimNodeLost(ctx, survivors, rc)
	resumed += reclaimed
	caughtUp = append(caughtUp, chans...)
	if err != nil {
		return lost, fmt.Errorf("core: reclaiming sessions recorded as node_lost: %w", err)
	}
	for _, cands := range survivors {
		rc.strays = append(rc.strays, cands...)
	}
	hungUp := m.hangUpSurvivors(ctx, rc)
	for _, e := range rc.gate.givenUp() {
		m.log.Error("a plugin that kept sessions did not answer in time, and was not asked again: the sessions it kept that were not taken up are lost, and those to hang up run on in it until it stops (ptyhost plugins restart)",
			"type", e.typ, "why", e.givenUp, "not_asked", e.skipped)
	}
	m.awaitCaughtUp(ctx, caughtUp)
	if err := m.writer.flush(ctx); err != nil {
		// The writer retries; the sessions are live whatever the store
		// says for now.
		m.log.Warn("recording the sessions taken up failed; will retry", "err", err)
	}
	if resumed+lost+hungUp > 0 {
		m.log.Info("sessions reconciled with the previous server's", "resumed", resumed, "lost", lost, "hung_up", hungUp)
	}
	return lost, nil
}

// survivors returns the sessions the plugins kept, by id, and the
// foreign ones (Survivor.Foreign), to be hung up; none when the
// Dispatcher is no SurvivorSource. An id is usually listed once, but
// more than one plugin may list it (a plugin lying, or a leftover):
// pickSurvivor chooses. A listing that fails is logged, and what it did
// return is used: the sessions of a plugin that could not list its own
// are lost.
func (m *Manager) survivors(ctx context.Context) (map[string][]Survivor, []Survivor) {
	src, ok := m.plugins.(SurvivorSource)
	if !ok {
		return nil, nil
	}
	list, err := src.Survivors(ctx)
	if err != nil {
		m.log.Error("listing the sessions the plugins kept failed; the sessions not listed are lost", "err", err)
	}
	byID := make(map[string][]Survivor, len(list))
	var foreign []Survivor
	for _, sv := range list {
		if sv.Foreign {
			m.log.Warn("a plugin kept a session of a type it does not serve; hanging it up", "session_id", sv.ID, "type", sv.EnvironmentType)
			foreign = append(foreign, sv)
			continue
		}
		byID[sv.ID] = append(byID[sv.ID], sv)
	}
	return byID, foreign
}

// reconciling is what one Reconcile learns on its way.
type reconciling struct {
	// types is the type of each environment looked up, by id: "" for one
	// that does not exist.
	types map[string]string
	// taken is the Keeper each session taken up came from, by id.
	taken map[string]shared.Keeper
	// strays are kept sessions to hang up (hangUpSurvivors).
	strays []Survivor
	// gate bounds what each plugin's attaches may cost the start.
	gate keeperGate
}

// notHandedOver deals with sv, a kept session its plugin did not hand
// over (err): it is hung up with the strays, unless the plugin was given
// up on, which keeperGate's log says once for all its sessions.
func (rc *reconciling) notHandedOver(m *Manager, sv Survivor, err error) {
	if errors.Is(err, errKeeperGivenUp) {
		return
	}
	m.log.Warn("the session's plugin kept it but did not hand it over; hanging it up", "session_id", sv.ID, "err", err)
	rc.strays = append(rc.strays, sv)
}

// pickSurvivor returns, of cands, the sessions the plugins kept under
// rec's id, the one of the type of rec's environment (kept true); the
// others go to rc.strays, to be hung up: only the plugin that serves a
// session's type may take it up. None is picked when rec's environment
// is gone.
func (m *Manager) pickSurvivor(ctx context.Context, rec SessionRecord, cands []Survivor, rc *reconciling) (sv Survivor, kept bool, err error) {
	if len(cands) == 0 {
		return Survivor{}, false, nil
	}
	typ, looked := rc.types[rec.EnvironmentID]
	if !looked {
		env, err := m.lookupEnvironment(ctx, rec.EnvironmentID)
		switch {
		case err == nil:
			typ = env.Type
		case !errors.Is(err, ErrEnvironmentNotFound):
			return Survivor{}, false, err
		}
		rc.types[rec.EnvironmentID] = typ
	}
	for _, c := range cands {
		// Exactly: a type is its plugin's as spelled (Dispatcher's
		// Environment), and another plugin may claim "host" beside HOST.
		if !kept && typ != "" && c.EnvironmentType == typ {
			sv, kept = c, true
			continue
		}
		m.log.Warn("a plugin kept a session under the id of a session of another type (or of an environment that is gone); hanging it up",
			"session_id", rec.ID, "type", c.EnvironmentType, "environment_type", typ)
		rc.strays = append(rc.strays, c)
	}
	return sv, kept, nil
}

// sameKeeper reports whether a and b are one plugin process's Keeper.
func sameKeeper(a, b shared.Keeper) (same bool) {
	if a == nil || b == nil {
		return a == b
	}
	if ta, tb := reflect.TypeOf(a), reflect.TypeOf(b); ta != tb || !ta.Comparable() {
		return false
	}
	// A comparable type may hold a value that is not (an interface
	// field holding a func, say): == panics on it.
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

// isLive reports whether the session id is in the manager's map.
func (m *Manager) isLive(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, live := m.sessions[id]
	return live
}

// recordLost records the session id as ERROR server_lost.
func (m *Manager) recordLost(ctx context.Context, id string) error {
	status, reason, zero := StatusError, ReasonServerLost, 0
	err := m.store.UpdateSession(ctx, id, SessionUpdate{
		Status: &status, StatusReason: &reason, ActiveConnections: &zero,
	})
	if err != nil && !errors.Is(err, ErrSessionNotFound) {
		return storeFailed(err)
	}
	return err
}

// adopt takes up the session of rec, which sv's plugin kept: it attaches to
// it from the oldest byte kept and runs it as CreateSession runs a new one.
// The channel it returns is closed once the session has read what the
// plugin kept.
func (m *Manager) adopt(ctx context.Context, rec SessionRecord, sv Survivor, gate *keeperGate) (<-chan struct{}, error) {
	var (
		p     shared.PTY
		start int64
	)
	err := gate.attach(ctx, sv, adoptTimeout, func(actx context.Context) error {
		var err error
		p, start, err = attachKept(actx, sv.Keeper, rec.ID, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("attaching to the kept session: %w", err)
	}
	if start < 0 || start > maxKeptOffset {
		// The plugin's word, which the scrollback's offsets must not take.
		_ = p.Close()
		return nil, fmt.Errorf("attaching to the kept session: the plugin answered offset %d, outside 0..%d", start, int64(maxKeptOffset))
	}
	now := m.now()
	rec.Status, rec.StatusReason = StatusActive, ""
	rec.ActiveConnections = 0
	rec.DetachedAt, rec.IdleDeadline = now, time.Time{}
	s := newSession(m.deps, rec)
	close(s.created) // taken up: no create of this server's owns it
	caughtUp := s.resumeAt(start, sv.EndOffset)
	// Wrapped as a created session's PTY is, so that RestartSession can
	// restart it from its record.
	s.pty, s.envType, s.state = adoptRestartable(p), sv.EnvironmentType, stateRunning

	m.mu.Lock()
	closed, taken := m.closed, m.sessions[rec.ID] != nil
	if !closed && !taken {
		m.sessions[rec.ID] = s
	}
	m.mu.Unlock()
	if closed || taken {
		// Give the session back to the plugin, which keeps it (Close
		// after Detach does not reach the plugin).
		if d, ok := p.(shared.Detacher); ok {
			d.Detach()
		}
		if err := p.Close(); err != nil {
			m.log.Warn("releasing a kept session failed", "session_id", rec.ID, "err", err)
		}
		if closed {
			return nil, ErrClosed
		}
		return nil, errNowLive
	}

	if sv.Exit == nil && rec.Cols > 0 && rec.Rows > 0 {
		// The record is what the next clients are told, but it may lag
		// the terminal: a server killed just after a resize had set the
		// terminal before its record was stored. The terminal takes the
		// recorded size (no change, and no SIGWINCH, when they agree).
		rctx, cancel := context.WithTimeout(ctx, resizeTimeout)
		err := s.pty.Resize(rctx, shared.Size{Cols: uint16(rec.Cols), Rows: uint16(rec.Rows)})
		cancel()
		if err != nil {
			s.log.Warn("giving the taken-up terminal its recorded size failed", "err", err)
		}
	}
	zero := 0
	s.changed(SessionUpdate{
		Status: &rec.Status, StatusReason: &rec.StatusReason, ActiveConnections: &zero, DetachedAt: &now,
	})
	m.run(s)
	m.armIdle(s, false)
	s.log.Info("session taken up again", "environment_id", rec.EnvironmentID, "type", sv.EnvironmentType,
		"offset", start, "kept_until", sv.EndOffset, "exited", sv.Exit != nil)
	m.publish(Event{Type: SessionResumed, SessionID: rec.ID})
	return caughtUp, nil
}

// maxKeptOffset bounds the offset a plugin may answer for a kept
// session's oldest byte: far beyond any real output (4 EiB), and far
// enough from the int64 limit that the scrollback's arithmetic on it
// cannot overflow.
const maxKeptOffset = 1 << 62

// hangUpSurvivors kills and closes, in parallel, rc.strays, the sessions
// the plugins kept that no live record claims, and returns how many it
// hung up. One whose id runs here is left alone unless this Reconcile
// took that id up from another plugin process: the same process's
// session is the live one.
func (m *Manager) hangUpSurvivors(ctx context.Context, rc *reconciling) int {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		n       int
		workers = make(chan struct{}, hangUpWorkers)
	)
	for _, sv := range rc.strays {
		if m.isLive(sv.ID) {
			if k, ok := rc.taken[sv.ID]; !ok || sameKeeper(k, sv.Keeper) {
				continue
			}
		}
		workers <- struct{}{}
		wg.Go(func() {
			defer func() { <-workers }()
			err := hangUpSurvivor(ctx, sv, &rc.gate)
			switch {
			case errors.Is(err, errKeeperGivenUp):
				return // said once, by Reconcile
			case err != nil:
				m.log.Warn("hanging up a session a plugin kept without a record failed", "session_id", sv.ID, "err", err)
				return
			}
			m.log.Warn("a plugin kept a session no live record claims; hung it up", "session_id", sv.ID, "type", sv.EnvironmentType)
			mu.Lock()
			n++
			mu.Unlock()
		})
	}
	wg.Wait()
	return n
}

// attachKept is k.Attach, refusing an answer of neither a PTY nor an
// error: a plugin's is refused by the SDK's client, but an embedder's own
// SurvivorSource is behind none, and a session with no PTY would crash
// the server at its first read or its hang-up.
func attachKept(ctx context.Context, k shared.Keeper, id string, offset int64) (shared.PTY, int64, error) {
	p, start, err := k.Attach(ctx, id, offset)
	if err == nil && p == nil {
		err = fmt.Errorf("%w: Attach returned no PTY and no error", shared.ErrPluginProtocol)
	}
	return p, start, err
}

// hangUpSurvivor attaches to sv, past the output kept, and kills it,
// within killTimeout (and gate's bound), then has the plugin clean up
// (within the PTY's own bound for that, which a slow container removal
// may need), on gate's account.
func hangUpSurvivor(ctx context.Context, sv Survivor, gate *keeperGate) error {
	var (
		p       shared.PTY
		killErr error
	)
	err := gate.attach(ctx, sv, gate.hangUpTimeout(), func(ctx context.Context) error {
		var err error
		if p, _, err = attachKept(ctx, sv.Keeper, sv.ID, sv.EndOffset); err != nil {
			return err
		}
		killErr = p.Kill(ctx)
		return nil
	})
	if err != nil {
		return fmt.Errorf("attaching: %w", err)
	}
	var errs []error
	if killErr != nil {
		errs = append(errs, fmt.Errorf("kill: %w", killErr))
	}
	gate.account(sv, func() {
		if err := p.Close(); err != nil {
			errs = append(errs, fmt.Errorf("cleanup: %w", err))
		}
	})
	return errors.Join(errs...)
}

// awaitCaughtUp waits, within ctx and catchUpTimeout, until every channel
// is closed.
func (m *Manager) awaitCaughtUp(ctx context.Context, chans []<-chan struct{}) {
	if len(chans) == 0 {
		return
	}
	timer := time.NewTimer(catchUpTimeout)
	defer timer.Stop()
	for i, ch := range chans {
		select {
		case <-ch:
		case <-timer.C:
			m.log.Warn("sessions taken up had not read all their plugins kept; a client resuming in the rest gets a reset and the replay",
				"behind", len(chans)-i, "waited", catchUpTimeout)
			return
		case <-ctx.Done():
			return
		}
	}
}
