package core

import (
	"context"
	"time"
)

// endedStatuses are the statuses of sessions that are over.
var endedStatuses = []Status{StatusTerminated, StatusError}

// PurgeEnded deletes the rows of sessions that ended (TERMINATED or ERROR)
// longer than Options.Retention ago, going by the time their row was last
// updated, which for an ended session is when it ended. It returns how many
// rows it deleted. The manager calls it periodically; with KeepForever it
// deletes nothing.
func (m *Manager) PurgeEnded(ctx context.Context) (int, error) {
	if m.opts.Retention == KeepForever {
		return 0, nil
	}
	cutoff := m.now().Add(-m.opts.Retention)
	n, err := m.store.DeleteSessions(ctx, endedStatuses, cutoff)
	if err != nil {
		return n, storeFailed(err)
	}
	if n > 0 {
		m.log.Info("deleted the records of ended sessions past retention", "count", n, "retention", m.opts.Retention)
	}
	return n, nil
}

// retentionInterval is how often the manager purges: twice per retention
// period, at least every hour, at most every second.
func retentionInterval(retention time.Duration) time.Duration {
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
