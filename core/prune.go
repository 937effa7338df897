package core

import (
	"context"
	"time"
)

// PruneEnded deletes the records of every session that has ended
// (TERMINATED or ERROR) by now, whatever Options.Retention says, and
// returns how many it deleted: what 'ptyhost prune' asks for. Running
// sessions are left alone, and so is an ended session whose end the
// manager has not written to the store yet (it goes at the next prune or
// with retention), and, with a NodeLostPruner store, a session recorded
// node_lost, which its node may yet take up again. The recordings of the deleted sessions go with them
// (removeOrphanRecordings). A client still attached to a session that has
// just exited keeps its exit: the session lingers in memory
// (Options.Linger), not in the record.
func (m *Manager) PruneEnded(ctx context.Context) (int, error) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	// DeleteSessions deletes the rows updated before its cutoff; one
	// updated at this very instant is ended too.
	del := m.store.DeleteSessions
	if p, ok := m.store.(NodeLostPruner); ok {
		del = p.DeleteSessionsButNodeLost
	}
	n, err := del(sctx, endedStatuses, m.now().Add(time.Millisecond))
	if err != nil {
		return n, storeFailed(err)
	}
	m.removeOrphanRecordings(ctx)
	if n > 0 {
		m.log.Info("deleted the records of ended sessions on request", "count", n)
	}
	return n, nil
}
