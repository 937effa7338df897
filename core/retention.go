package core

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"
)

// endedStatuses are the statuses of sessions that are over.
var endedStatuses = []Status{StatusTerminated, StatusError}

// PurgeEnded deletes the rows of sessions that ended (TERMINATED or ERROR)
// longer than Options.Retention ago, going by the time their row was last
// updated, which for an ended session is when it ended. It returns how many
// rows it deleted. The recordings of the sessions whose rows are gone go
// with them (removeOrphanRecordings). The manager calls it periodically.
//
// With KeepForever it deletes no row, but still removes the recordings
// whose rows are gone: in a cluster another node's prune deletes the rows
// of this node's sessions from the shared table, and only this node can
// remove their files, which nothing else would ever remove.
func (m *Manager) PurgeEnded(ctx context.Context) (int, error) {
	if m.opts.Retention == KeepForever {
		m.removeOrphanRecordings(ctx)
		return 0, nil
	}
	cutoff := m.now().Add(-m.opts.Retention)
	n, err := m.store.DeleteSessions(ctx, endedStatuses, cutoff)
	if err != nil {
		return n, storeFailed(err)
	}
	m.removeOrphanRecordings(ctx)
	if n > 0 {
		m.log.Info("deleted the records of ended sessions past retention", "count", n, "retention", m.opts.Retention)
	}
	return n, nil
}

// retentionInterval is how often the manager purges: twice per retention
// period, at least every hour, at most every second. With KeepForever it
// is hourly, for the recordings of rows another node deleted.
func retentionInterval(retention time.Duration) time.Duration {
	if retention == KeepForever {
		return time.Hour
	}
	return min(max(retention/2, time.Second), time.Hour)
}

// purgeLoop runs PurgeEnded at start and then every retentionInterval until
// ctx ends. A failure is logged and tried again at the next round.
func (m *Manager) purgeLoop(ctx context.Context) {
	interval := retentionInterval(m.opts.Retention)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Minute)
		if _, err := m.PurgeEnded(pctx); err != nil && ctx.Err() == nil {
			m.log.Warn("deleting ended sessions past retention failed; will retry", "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// removeOrphanRecordings removes the recording (RecordingDir/ID.cast) of
// every session that has no row any more, after PurgeEnded or PruneEnded
// deleted rows. It goes by the directory rather than by the rows deleted,
// which the store does not name, so that it also removes what an earlier
// run left behind when it stopped between a row's deletion and its
// file's, and, in a cluster, the recordings of this node's sessions whose
// rows another node's prune or retention deleted. Failures are logged: a
// recording left is removed next time.
//
// A session of the map is skipped, whatever its row says. The map is
// checked, under mu, after the store has said the row is gone: a session
// created under that id meanwhile is in the map by then (create reserves
// the id before it saves the row and starts its recording), and one
// created later truncates the file anew.
func (m *Manager) removeOrphanRecordings(ctx context.Context) {
	if m.opts.RecordingDir == "" {
		return
	}
	entries, err := os.ReadDir(m.opts.RecordingDir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("cannot list the recordings to remove those of deleted sessions", "err", err)
		}
		return
	}
	removed := 0
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".cast")
		if !ok || !e.Type().IsRegular() || validID(id) != nil {
			continue
		}
		if _, err := m.store.GetSession(ctx, id); !errors.Is(err, ErrSessionNotFound) {
			if err != nil && ctx.Err() == nil {
				m.log.Warn("cannot tell whether a recording's session is deleted; kept for now", "session_id", id, "err", err)
			}
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if m.removeOrphanRecording(id) {
			removed++
		}
	}
	if removed > 0 {
		m.log.Info("removed the recordings of deleted sessions", "count", removed)
	}
}

// removeOrphanRecording removes session id's recording, whose row the
// store has just said is gone, unless the session is in the map, and
// reports whether it removed one. The map is checked under mu, which
// create holds to reserve an id, so a session created under id since the
// store answered keeps its new recording. A failure is logged.
func (m *Manager) removeOrphanRecording(id string) bool {
	m.mu.Lock()
	_, live := m.sessions[id]
	var err error
	if !live {
		err = os.Remove(m.recordingPath(id))
	}
	m.mu.Unlock()
	switch {
	case live, errors.Is(err, os.ErrNotExist):
		return false
	case err != nil:
		m.log.Warn("cannot remove the recording of a deleted session", "session_id", id, "err", err)
		return false
	}
	return true
}
