package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Events and lost nodes in a cluster (docs/design.md, "Nodes"). Each node
// publishes its own sessions' events on its bus, as a single server does,
// and hands them to Options.Relay, which carries them to the other nodes
// (core/gormstore's relay: PostgreSQL LISTEN/NOTIFY); the other nodes'
// events come back through it to this node's subscribers. A node never
// gets its own events back from the relay, so none is delivered twice.
//
// A node whose lease expired is lost: one of the others records its live
// sessions as ERROR ReasonNodeLost and publishes their SessionError events
// (core/gormstore does both in one transaction). If the lost node comes
// back on its data directory while its plugins still keep the sessions,
// its Reconcile takes them up again (reclaimNodeLost), unless their
// environment is gone meanwhile or they were destroyed meanwhile
// (destroyNodeLost): those it hangs up.

// ReasonNodeLost is recorded for the sessions of a node of a cluster whose
// lease expired (it died, stalled, or lost the database): another node
// recorded them as ERROR with it. It begins with "node_lost", the reason
// clients test for.
const ReasonNodeLost = "node_lost: the node running the session stopped renewing its lease"

// ReasonSingleServerLost is recorded for a live session of a single
// server, from before the database served a cluster (its record names no
// node), once the cluster runs and no single server holds the database:
// one of the nodes records it as ERROR with it (core/gormstore's
// MarkLostNodes). It is of the node_lost kind: the node restarted on the
// single server's data directory, if its plugins kept the session, takes
// it up (reclaimNodeLost), and a DELETE meanwhile ends it.
const ReasonSingleServerLost = "node_lost: the single server that ran the session is gone, and no node has taken it up"

// IsNodeLost reports whether a session's status reason is ReasonNodeLost
// (or any reason of the node_lost kind).
func IsNodeLost(reason string) bool {
	return reason == "node_lost" || strings.HasPrefix(reason, "node_lost:")
}

// EventRelay carries events between the nodes of a cluster. Its methods
// are safe for concurrent use.
type EventRelay interface {
	// Send hands e, published on this node, to the other nodes. It never
	// blocks: sessions publish their events on their own paths. What it
	// cannot send (the database is down, or its queue is full) is lost
	// for the other nodes, whose subscribers get EventsLost instead.
	Send(e Event)
	// Receive calls deliver with the other nodes' events until ctx ends,
	// each node's in the order it sent them. When events may have been
	// missed (its connection was lost and made again), it delivers an
	// Event of type EventsLost.
	Receive(ctx context.Context, deliver func(Event))
}

// receiveRelayed delivers the other nodes' events to this manager's
// subscribers until ctx ends. Their times and nodes are the sending
// node's.
func (m *Manager) receiveRelayed(ctx context.Context) {
	m.opts.Relay.Receive(ctx, m.events.publish)
}

// SessionReclaimer is implemented by a store that keeps the nodes of a
// cluster (core/gormstore's DB). Reconcile uses it to take up a session
// another node recorded as node_lost.
type SessionReclaimer interface {
	// ReclaimSession records session id, which is ERROR with a node_lost
	// reason and belongs to node, as ACTIVE again, only while node's lease
	// is live and held by this process; it reports whether it did. Two
	// processes can never both reclaim a session, nor can a session be
	// reclaimed and then recorded as lost by a lease that had already
	// expired.
	//
	// A session whose record names no node (a single server's, from
	// before the database served a cluster), live or ERROR node_lost, is
	// reclaimed the same way, and recorded as node's: the write that sets
	// its node is conditional on its naming none, so that of two nodes
	// reclaiming it at once one does.
	ReclaimSession(ctx context.Context, id, node string) (bool, error)
}

// ReasonDestroyedNodeLost is recorded for a session destroyed (DELETE)
// while it was recorded node_lost: TERMINATED with it, the session is no
// longer node_lost, so that its node, should it come back with the
// session kept, hangs it up instead of taking it up (reclaimNodeLost).
const ReasonDestroyedNodeLost = "destroyed: the session was destroyed while its node was lost"

// NodeLostEnder is implemented by a store that keeps the nodes of a
// cluster (core/gormstore's DB). DestroySession uses it to end a session
// another node recorded as node_lost.
type NodeLostEnder interface {
	// EndNodeLost records session id as TERMINATED with reason, in one
	// conditional write, only while it is ERROR with a node_lost reason,
	// whichever node it belongs to; it reports whether it did. Of it and
	// a ReclaimSession of the same session at once, exactly one succeeds.
	EndNodeLost(ctx context.Context, id, reason string) (bool, error)
}

// NodeLostPruner is implemented by a store that keeps the nodes of a
// cluster (core/gormstore's DB). PruneEnded uses it to leave alone the
// records of sessions recorded node_lost: their node may come back with
// them kept, and takes them up only while the record says node_lost. A
// DELETE ends such a session for good (NodeLostEnder), and the prune after
// it deletes its record; retention deletes it once it is old enough.
type NodeLostPruner interface {
	// DeleteSessionsButNodeLost is DeleteSessions, leaving alone the rows
	// ERROR with a node_lost reason (IsNodeLost).
	DeleteSessionsButNodeLost(ctx context.Context, statuses []Status, before time.Time) (int, error)
}

// destroyNodeLost ends session id, which is not live here, if it is
// recorded node_lost: its node is away, and no other runs it. It is
// recorded TERMINATED (ReasonDestroyedNodeLost), and a SessionDestroyed
// event published. A session that runs on another node, such as one its
// node took up again (reclaimNodeLost) between the API's look at its
// record and this, is ErrOtherNode: only that node can end it. Any other
// id is left alone, as DestroySession leaves an unknown one; without a
// NodeLostEnder store there is nothing to do.
func (m *Manager) destroyNodeLost(ctx context.Context, id string) error {
	e, ok := m.store.(NodeLostEnder)
	if !ok {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	ended, err := e.EndNodeLost(sctx, id, ReasonDestroyedNodeLost)
	if err != nil {
		return storeFailed(err)
	}
	if ended {
		m.log.Info("session recorded as node_lost destroyed; its node hangs it up if it comes back", "session_id", id)
		m.publish(Event{Type: SessionDestroyed, SessionID: id})
		return nil
	}
	if m.opts.NodeName == "" {
		return nil
	}
	node, err := m.liveElsewhere(ctx, id)
	if err != nil {
		return err
	}
	if node != "" {
		return fmt.Errorf("%w: session %s runs on node %s; try again", ErrOtherNode, id, node)
	}
	return nil
}

// reclaimNodeLost takes up the sessions this node's plugins kept whose
// records another node marked node_lost while this node was away: for
// each survivor no live record claimed, a record of this node that is
// ERROR node_lost, of an environment that still exists, is reclaimed
// (SessionReclaimer) and the session adopted. So are the sessions of a
// single server this node was before the database served a cluster, kept
// by the plugins of its data directory: their records name no node, and
// are live or were marked node_lost meanwhile (ReasonSingleServerLost);
// reclaimed, they are this node's.
// The survivors of the records it looks at are removed from survivors,
// and those it does not take up go to rc.strays, to be hung up; the
// others stay in survivors. It returns how many it took up and the
// channels adopt returned.
func (m *Manager) reclaimNodeLost(ctx context.Context, survivors map[string][]Survivor, rc *reconciling) (int, []<-chan struct{}, error) {
	reclaimer, ok := m.store.(SessionReclaimer)
	if !ok || m.opts.NodeName == "" {
		return 0, nil, nil
	}
	n := 0
	var caughtUp []<-chan struct{}
	for id, cands := range survivors {
		if m.isLive(id) {
			continue
		}
		rec, err := m.store.GetSession(ctx, id)
		if errors.Is(err, ErrSessionNotFound) {
			continue
		}
		if err != nil {
			return n, caughtUp, storeFailed(err)
		}
		if !reclaimable(rec, m.opts.NodeName) {
			continue
		}
		// A node_lost session does not hold its environment
		// (otherNodesUse): one deleted while the node was away, or
		// made again under its id as another type, is not taken up,
		// so that nothing runs on in an environment that is gone.
		// What pickSurvivor does not take is hung up. (A check, not a lock, as
		// otherNodesUse's.)
		delete(survivors, id) // what pickSurvivor does not take goes to rc.strays
		sv, kept, err := m.pickSurvivor(ctx, rec, cands, rc)
		if err != nil {
			return n, caughtUp, err
		}
		if !kept {
			m.log.Warn("a session recorded as node_lost ran in an environment that is gone (deleted, or made again as another type); hanging it up",
				"session_id", id, "environment_id", rec.EnvironmentID)
			continue
		}
		ok, err := reclaimer.ReclaimSession(ctx, id, m.opts.NodeName)
		if err != nil {
			return n, caughtUp, storeFailed(err)
		}
		if !ok {
			m.log.Warn("could not reclaim a session recorded as node_lost or by a single server: this node's lease is not live, or another node took it",
				"session_id", id, "node", rec.Node)
			rc.strays = append(rc.strays, sv)
			continue
		}
		if rec.Node == "" {
			m.log.Info("a session of the single server this node was before the cluster is this node's now", "session_id", id)
		}
		rec.Node = m.opts.NodeName
		ch, err := m.adopt(ctx, rec, sv, &rc.gate)
		switch {
		case err == nil:
			rc.taken[id] = sv.Keeper
			caughtUp = append(caughtUp, ch)
			n++
			m.log.Info("session recorded as node_lost taken up again", "session_id", id)
			continue
		case errors.Is(err, errNowLive):
			continue
		case errors.Is(err, ErrClosed):
			return n, caughtUp, err
		}
		rc.notHandedOver(m, sv, err)
		if err := m.recordLost(ctx, id); err != nil {
			return n, caughtUp, err
		}
	}
	return n, caughtUp, nil
}

// reclaimable reports whether node may reclaim rec's session, which its
// plugins kept: its own record marked node_lost while it was away, or a
// record of no node, from a single server before the database served a
// cluster, live or marked node_lost since. A record of no node is taken
// only through the plugins that kept its session, which are those of the
// single server's data directory: no other node has them.
func reclaimable(rec SessionRecord, node string) bool {
	lost := rec.Status == StatusError && IsNodeLost(rec.StatusReason)
	if rec.Node == "" {
		return lost || isLive(rec.Status)
	}
	return rec.Node == node && lost
}
