package gormstore

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"gorm.io/gorm"

	"github.com/ptyhost/ptyhost/core"
)

// Lost nodes. After each renewal of its own lease, every node looks for
// nodes whose lease expired (by the database's clock) that still have
// live sessions (STARTING, ACTIVE, IDLE), and records those sessions as
// ERROR core.ReasonNodeLost, notifying a session_error event for each
// (relay.go), all in one transaction. A node released by a stop that left
// its sessions running is swept the same way, once its lease has run out
// (Release leaves it running): a planned restart within it loses nothing.
// The transaction locks the lost node's row (SELECT … FOR UPDATE SKIP
// LOCKED): of nodes sweeping at once one marks a lost node's sessions and
// the others skip it, and a process registering under the lost node's
// name (RegisterNode takes the same row lock, goneHolder) either commits
// first, and the node is not lost, or waits until the sessions are
// marked, and finds them so. The sessions' rows are locked the same way,
// skipping those another transaction holds: a lost node's transaction
// left open (it stalled, or was cut off, between a statement and its
// COMMIT) holds up neither its other sessions nor other lost nodes'. Its
// row is marked by a later sweep, once PostgreSQL has ended that
// transaction (idleInTransactionTimeout); a node registering meanwhile
// finds it live, its own, and takes it up as such.
//
// A node that comes back takes up the marked sessions its plugins kept
// (core's Reconcile, through ReclaimSession), only while it holds the
// name's live lease. Since a sweep marks only the sessions of an expired
// lease, under the row lock that a registration needs, a session is never
// both reclaimed by a live node and marked by a sweep after it.
//
// The live sessions of a single server from before the database served a
// cluster name no node. The node restarted on that server's data
// directory takes up those its plugins kept (ReclaimSession sets their
// node, only where it is still empty); no other node can, as the plugins
// are that directory's. So that the others, whose machine may be gone
// for good, do not stay live forever, a sweep records them ERROR
// core.ReasonSingleServerLost, of the node_lost kind, once no single
// server holds a claim on the database (markLostSingle): the node that
// has them reclaims them from there as from a live record, and a DELETE
// meanwhile ends them (EndNodeLost).

// nodeSelf is the node this process registered as (RegisterNode), for
// ReclaimSession.
type nodeSelf struct {
	name, instance string
	// fingerprint is the fingerprint of its cluster secret, "" without
	// one (nodesecret.go).
	fingerprint string
	// ready is the lease's: set once the node has taken up its sessions
	// (NodeLease.Ready).
	ready *atomic.Bool
}

// liveStatuses are the statuses of sessions that have not ended.
var liveStatuses = statusNames([]core.Status{core.StatusStarting, core.StatusActive, core.StatusIdle})

// MarkLostNodes records the live sessions of every node whose lease
// expired as ERROR core.ReasonNodeLost, and notifies a session_error event
// for each to every node's Relay, in one transaction. It then records the
// live sessions of no node (a single server's) as ERROR
// core.ReasonSingleServerLost, the same way, unless a single server's
// claim is live (markLostSingle), or this process's node has not taken up
// its own sessions yet (NodeLease.Ready): it may be that single server,
// restarted as a node. It returns the sessions it marked, by
// node ("" for a single server's). Nodes call it after each renewal of
// their lease (NodeLease); it is exported for tests and tools.
func (s *DB) MarkLostNodes(ctx context.Context) (map[string][]string, error) {
	return s.markLostNodes(ctx, s.db)
}

// markLostNodes is MarkLostNodes through db, one of the store's pools:
// a node's renewals sweep through the renewal pool (pool.go).
func (s *DB) markLostNodes(ctx context.Context, db *gorm.DB) (map[string][]string, error) {
	if !s.postgres() {
		return nil, fmt.Errorf("store: mark lost nodes: %w", ErrNodesUnsupported)
	}
	var marked map[string][]string
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		marked = nil
		var names []string
		// A node another sweep holds is skipped: that one marks it.
		err := tx.Raw(`SELECT name FROM nodes n WHERE n.lease_expires_at <= now()
				AND EXISTS (SELECT 1 FROM sessions s WHERE s.node = n.name AND s.status IN ?)
			ORDER BY name FOR UPDATE SKIP LOCKED`, liveStatuses).Scan(&names).Error
		if err != nil || len(names) == 0 {
			return err
		}
		now := s.stamp()
		var lost []struct{ ID, Node string }
		// A session row another transaction holds is skipped, not waited
		// for: that may be the open transaction of a process that stalled
		// or was cut off, which holds it until the database ends it
		// (idleInTransactionTimeout). Its node stays lost with a live
		// session, so a later sweep marks it. The marks are notified in
		// the order the sessions list in.
		err = tx.Raw(`WITH marked AS (UPDATE sessions SET status = ?, status_reason = ?, active_connections = 0, updated_at = ?
				WHERE id IN (SELECT id FROM sessions WHERE node IN ? AND status IN ? FOR UPDATE SKIP LOCKED)
				RETURNING id, node, created_at)
			SELECT id, node FROM marked ORDER BY node, created_at, id`,
			string(core.StatusError), core.ReasonNodeLost, now, names, liveStatuses).Scan(&lost).Error
		if err != nil {
			return err
		}
		marked = make(map[string][]string)
		for _, l := range lost {
			// Notified on commit, to every node's relay, this one's too.
			p, err := notification{Type: string(core.SessionError), SessionID: l.ID, Node: l.Node, Time: now,
				Error: core.ReasonNodeLost}.payload()
			if err != nil {
				return err
			}
			if err := tx.Exec(notifySQL, p).Error; err != nil {
				return err
			}
			marked[l.Node] = append(marked[l.Node], l.ID)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: mark lost nodes: %w", err)
	}
	if self := s.self.Load(); self != nil && !self.ready.Load() {
		// Not before this node took up its own sessions: it may be the
		// single server restarted as a node, whose sessions these are.
		return marked, nil
	}
	single, err := s.markLostSingle(ctx, db)
	if err != nil {
		return marked, fmt.Errorf("store: mark lost nodes: %w", err)
	}
	if len(single) > 0 {
		if marked == nil {
			marked = make(map[string][]string)
		}
		marked[""] = single
	}
	return marked, nil
}

// markLostSingle records the live sessions of no node as ERROR
// core.ReasonSingleServerLost and notifies their session_error events, in
// one transaction, unless a single server's claim is live (judged as
// RegisterNode judges it, under the same advisory lock, so that no claim
// is made meanwhile); it returns their ids. It looks first without the
// lock: once the single server's sessions are swept, there are none.
// (Its own transaction: MarkLostNodes's holds rows of nodes, which a
// registration locks after the advisory lock.)
func (s *DB) markLostSingle(ctx context.Context, db *gorm.DB) ([]string, error) {
	var found []string
	err := db.WithContext(ctx).Raw(`SELECT id FROM sessions WHERE node = '' AND status IN ? LIMIT 1`, liveStatuses).Scan(&found).Error
	if err != nil || len(found) == 0 {
		return nil, err
	}
	var ids []string
	err = db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		ids = nil
		if err := lockNodesAndClaim(tx); err != nil {
			return err
		}
		switch err := s.refuseClaimed(tx); {
		case errors.Is(err, ErrOwned):
			return nil // the single server runs: its sessions are its own
		case err != nil:
			return err
		}
		now := s.stamp()
		// A row another transaction holds is skipped, as MarkLostNodes
		// skips one, and marked by a later sweep.
		if err := tx.Raw(`WITH marked AS (UPDATE sessions SET status = ?, status_reason = ?, active_connections = 0, updated_at = ?
				WHERE id IN (SELECT id FROM sessions WHERE node = '' AND status IN ? FOR UPDATE SKIP LOCKED)
				RETURNING id, created_at)
			SELECT id FROM marked ORDER BY created_at, id`,
			string(core.StatusError), core.ReasonSingleServerLost, now, liveStatuses).Scan(&ids).Error; err != nil {
			return err
		}
		for _, id := range ids {
			p, err := notification{Type: string(core.SessionError), SessionID: id, Time: now,
				Error: core.ReasonSingleServerLost}.payload()
			if err != nil {
				return err
			}
			if err := tx.Exec(notifySQL, p).Error; err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

// ReclaimSession is core.SessionReclaimer: it records session id as ACTIVE
// again if it is ERROR with a node_lost reason, belongs to node, and node
// is the one this process registered as, with its lease live by the
// database's clock. It reports whether it did. A session of no node (a
// single server's), live or ERROR node_lost, is reclaimed the same way
// and recorded as node's: the one UPDATE sets the node only where it is
// still empty, so that of two nodes reclaiming it at once the second
// finds it the first's (PostgreSQL checks the condition again on the row
// the first committed).
func (s *DB) ReclaimSession(ctx context.Context, id, node string) (bool, error) {
	self := s.self.Load()
	if self == nil || self.name != node || !s.postgres() {
		return false, nil
	}
	const nodeLost = `status = ? AND (status_reason = 'node_lost' OR status_reason LIKE 'node_lost:%')`
	res := s.db.WithContext(ctx).Exec(`UPDATE sessions SET node = ?, status = ?, status_reason = '', updated_at = ?
		WHERE id = ? AND (node = ? AND `+nodeLost+` OR node = '' AND (status IN ? OR `+nodeLost+`))
			AND EXISTS (SELECT 1 FROM nodes WHERE name = ? AND instance = ? AND lease_expires_at > now() AND NOT released)`,
		node, string(core.StatusActive), s.stamp(), id, node, string(core.StatusError), liveStatuses, string(core.StatusError),
		node, self.instance)
	if res.Error != nil {
		return false, fmt.Errorf("store: reclaim session %q: %w", id, res.Error)
	}
	return res.RowsAffected == 1, nil
}

// EndNodeLost is core.NodeLostEnder: it records session id as TERMINATED
// with reason if it is ERROR with a node_lost reason, whichever node it
// belongs to, in one conditional UPDATE, and reports whether it did. Since
// ReclaimSession takes back only a node_lost session, in an UPDATE of the
// same row, of the two at once one changes the row and the other finds it
// no longer node_lost.
func (s *DB) EndNodeLost(ctx context.Context, id, reason string) (bool, error) {
	res := s.db.WithContext(ctx).Exec(`UPDATE sessions SET status = ?, status_reason = ?, active_connections = 0, updated_at = ?
		WHERE id = ? AND status = ? AND (status_reason = 'node_lost' OR status_reason LIKE 'node_lost:%')`,
		string(core.StatusTerminated), reason, s.stamp(), id, string(core.StatusError))
	if res.Error != nil {
		return false, fmt.Errorf("store: end node_lost session %q: %w", id, res.Error)
	}
	return res.RowsAffected == 1, nil
}

var (
	_ core.SessionReclaimer = (*DB)(nil)
	_ core.NodeLostEnder    = (*DB)(nil)
	_ core.NodeLostPruner   = (*DB)(nil)
)
