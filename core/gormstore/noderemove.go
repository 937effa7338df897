package gormstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ptyhost/ptyhost/core"
)

// Removing a node from the registry (core.NodeRemover). A node's row is
// deleted only when it is gone for good: its lease has expired by the
// database's clock, and no session of it is recorded running (STARTING,
// ACTIVE, IDLE) or node_lost, which it would take up again if it came
// back. A row whose node comes back later is simply inserted again by its
// registration (RegisterNode's upsert); the node's ended sessions keep
// naming it.

// removeShownIDs is how many session ids a refused removal names of each
// kind.
const removeShownIDs = 5

// removeAttempts bounds how often RemoveNode tries again when the node
// changed between its delete and its look at why the delete was refused.
const removeAttempts = 3

// RemoveNode is core.NodeRemover: it deletes node name's row if its lease
// has expired and the store records no session of it that runs or is
// ERROR node_lost, or returns a *core.NodeInUseError saying why not, or an
// error wrapping core.ErrNodeNotFound.
//
// The decision is one DELETE whose WHERE holds every condition, so nothing
// can change between the check and the delete. A registration of the name
// meanwhile (the node coming back) updates the row: the DELETE, waiting
// for its lock, judges the row again as the registration left it, with a
// live lease, and leaves it; or it deletes first, and the registration,
// waiting for the same lock, finds no row and inserts one. A reclaim
// (ReclaimSession) writes only under the node's live lease, so only after
// such a registration: the node_lost session it takes back kept the row
// from the DELETE already, and a session of no node it takes becomes the
// node's while the row is live, or once it was inserted anew. The sweep
// that records a lost node's sessions node_lost (MarkLostNodes) turns one
// kind of session that keeps the row into the other.
//
// What no statement sees is a write the node itself sent while its lease
// was live that commits only after the lease expired and the DELETE
// began. A node gives its lease up a renewal period before it could
// expire (NodeLease), so only a process stalled across that bound makes
// one.
func (s *DB) RemoveNode(ctx context.Context, name string) error {
	if !s.postgres() {
		return fmt.Errorf("store: remove node %q: %w", name, ErrNodesUnsupported)
	}
	for range removeAttempts {
		res := s.db.WithContext(ctx).Exec(`DELETE FROM nodes n WHERE n.name = ? AND n.lease_expires_at <= now()
				AND NOT EXISTS (SELECT 1 FROM sessions WHERE sessions.node = n.name
					AND (sessions.status IN ? OR sessions.status = ? AND `+nodeLostReason+`))`,
			name, liveStatuses, string(core.StatusError))
		if res.Error != nil {
			return fmt.Errorf("store: remove node %q: %w", name, res.Error)
		}
		if res.RowsAffected == 1 {
			return nil
		}
		inUse, err := s.whyInUse(ctx, name)
		if err != nil {
			return err
		}
		if inUse != nil {
			return inUse
		}
		// The node was in use at the DELETE, and is no longer: try again.
	}
	return &core.NodeInUseError{Name: name}
}

// whyInUse returns why node name's row may not be deleted, nil when
// nothing keeps it (it changed since the DELETE that was refused), or an
// error wrapping core.ErrNodeNotFound when there is no row. It only
// reports: the DELETE decided.
func (s *DB) whyInUse(ctx context.Context, name string) (*core.NodeInUseError, error) {
	var rows []struct {
		Live, Released    bool
		Left              float64 // seconds
		Running, NodeLost int
	}
	err := s.db.WithContext(ctx).Raw(`SELECT n.lease_expires_at > now() AS live, n.released,
			extract(epoch FROM n.lease_expires_at - now()) AS left,
			(SELECT count(*) FROM sessions WHERE sessions.node = n.name AND sessions.status IN ?) AS running,
			(SELECT count(*) FROM sessions WHERE sessions.node = n.name AND sessions.status = ? AND `+nodeLostReason+`) AS node_lost
		FROM nodes n WHERE n.name = ?`, liveStatuses, string(core.StatusError), name).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("store: remove node %q: %w", name, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("store: remove node %q: %w", name, core.ErrNodeNotFound)
	}
	r := rows[0]
	if !r.Live && r.Running == 0 && r.NodeLost == 0 {
		return nil, nil
	}
	e := &core.NodeInUseError{Name: name, LeaseLive: r.Live, Released: r.Released, Running: r.Running, NodeLost: r.NodeLost}
	if r.Live {
		e.LeaseLeft = time.Duration(r.Left * float64(time.Second)).Round(time.Millisecond)
	}
	if r.Running > 0 {
		if err := s.db.WithContext(ctx).Raw(`SELECT id FROM sessions WHERE node = ? AND status IN ? ORDER BY created_at, id LIMIT ?`,
			name, liveStatuses, removeShownIDs).Scan(&e.RunningIDs).Error; err != nil {
			return nil, fmt.Errorf("store: remove node %q: %w", name, err)
		}
	}
	if r.NodeLost > 0 {
		if err := s.db.WithContext(ctx).Raw(`SELECT id FROM sessions WHERE node = ? AND status = ? AND `+nodeLostReason+` ORDER BY created_at, id LIMIT ?`,
			name, string(core.StatusError), removeShownIDs).Scan(&e.NodeLostIDs).Error; err != nil {
			return nil, fmt.Errorf("store: remove node %q: %w", name, err)
		}
	}
	return e, nil
}

var _ core.NodeRemover = (*DB)(nil)
