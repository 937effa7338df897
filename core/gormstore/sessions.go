package gormstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/ptyhost/ptyhost/core"
)

// SaveSession inserts rec, or replaces the whole row when its id exists. A
// zero CreatedAt is set from Options.Now; UpdatedAt always is. On a node of
// a cluster (RegisterNode), a row another node runs is not replaced, nor
// one recorded node_lost that is not this node's (its node may come back
// with the session; a DELETE ends it first): the error wraps
// core.ErrAlreadyExists. On a server whose claim on the
// database (Claim) is lost, nothing is written: the error wraps
// ErrClaimLost.
func (s *DB) SaveSession(ctx context.Context, rec core.SessionRecord) error {
	if rec.ID == "" {
		return fmt.Errorf("store: save session: empty id: %w", core.ErrInvalidArgument)
	}
	now := s.stamp()
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = now
	}
	rec.UpdatedAt = now
	m := toSessionModel(rec)
	if err := s.claimLost(); err != nil {
		return fmt.Errorf("store: save session %q: %w", rec.ID, err)
	}
	onConflict := clause.OnConflict{Columns: []clause.Column{{Name: "id"}}, UpdateAll: true}
	self := s.self.Load()
	if self != nil {
		// A node of a cluster replaces only its own row or an ended one:
		// of two nodes creating one id at once, one wins, in the
		// database, and the other is refused before it spawns. A
		// node_lost row is not ended for good.
		onConflict.Where = clause.Where{Exprs: []clause.Expression{clause.Expr{
			SQL:  "sessions.node = ? OR sessions.status NOT IN ? AND NOT (sessions.status = ? AND " + nodeLostReason + ")",
			Vars: []any{self.name, liveStatuses, string(core.StatusError)},
		}}}
	}
	res := s.db.WithContext(ctx).Clauses(onConflict).Create(&m)
	if res.Error != nil {
		return fmt.Errorf("store: save session %q: %w", rec.ID, res.Error)
	}
	if self != nil && res.RowsAffected == 0 {
		var row struct{ Node, Status, StatusReason string }
		if err := s.db.WithContext(ctx).Raw("SELECT node, status, status_reason FROM sessions WHERE id = ?", rec.ID).Scan(&row).Error; err == nil &&
			row.Status == string(core.StatusError) && (row.StatusReason == "node_lost" || strings.HasPrefix(row.StatusReason, "node_lost:")) {
			return fmt.Errorf("store: session %q is recorded node_lost: it runs again if its node comes back; delete it to end it for good, then create it: %w", rec.ID, core.ErrAlreadyExists)
		}
		return fmt.Errorf("store: session %q runs on another node: %w", rec.ID, core.ErrAlreadyExists)
	}
	return nil
}

// nodeLostReason is the SQL condition of a node_lost status reason.
const nodeLostReason = "(sessions.status_reason = 'node_lost' OR sessions.status_reason LIKE 'node_lost:%')"

// UpdateSession writes the non-nil fields of u to session id's row and sets
// its updated_at, or returns an error wrapping core.ErrSessionNotFound. A
// LastActiveAt pointing at the zero time clears the column. On a node of a
// cluster, only its own rows not recorded node_lost are written, and only
// while this process holds the node's lease: another row is not found, and
// any row once the lease expired is refused (ErrLeaseLost). On a server that claimed the database
// (Claim), rows are written only while the claim is its: an update after
// another server took it over is not found, and one after this server
// knows the claim lost is refused (ErrClaimLost).
//
// The columns written are those u.Fields names, and their values are what
// u.ApplyTo puts in a record, converted as SaveSession converts it, so the
// store has no list of its own of what an update can change.
func (s *DB) UpdateSession(ctx context.Context, id string, u core.SessionUpdate) error {
	var rec core.SessionRecord
	u.ApplyTo(&rec)
	rec.UpdatedAt = s.stamp()
	m := toSessionModel(rec)
	// Select names the columns to write, zero values included, and no
	// others.
	cols := append(u.Fields(), "updated_at")
	q := s.db.WithContext(ctx).Model(&sessionModel{}).Where("id = ?", id)
	if self := s.self.Load(); self != nil {
		// A node of a cluster writes only its own rows, never over a
		// node_lost mark another node made once its lease expired, and
		// only while its lease is live by the database's clock: a late
		// write of a node that lost its lease cannot revive the session,
		// even after another node ended the mark (EndNodeLost) (taking
		// it back is ReclaimSession's). A released lease is still live
		// while it runs (Release), so a stop's last writes land.
		q = q.Where("node = ? AND NOT (status = ? AND status_reason LIKE ?)", self.name, string(core.StatusError), "node_lost%").
			Where("EXISTS (SELECT 1 FROM nodes WHERE name = ? AND instance = ? AND lease_expires_at > now())", self.name, self.instance)
	} else {
		// A single server writes only while it holds its claim (Claim).
		var err error
		if q, err = s.fenceSessions(q); err != nil {
			return fmt.Errorf("store: update session %q: %w", id, err)
		}
	}
	res := q.Select(cols).Updates(&m)
	if res.Error != nil {
		return fmt.Errorf("store: update session %q: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		if self := s.self.Load(); self != nil {
			live, err := s.leaseLive(ctx, self)
			switch {
			case err != nil:
				// Not known to be missing: to be retried, not dropped.
				return fmt.Errorf("store: update session %q: checking the lease: %w", id, err)
			case !live:
				return fmt.Errorf("store: update session %q: %w", id, ErrLeaseLost)
			}
		}
		return fmt.Errorf("store: session %q: %w", id, core.ErrSessionNotFound)
	}
	return nil
}

// ErrLeaseLost is wrapped by the error of a node's session write refused
// because the node's lease has expired by the database's clock. It is not
// a missing row: the write is to be kept, not dropped (the core's writer
// retries it, and a session's end it carries stays its plugin's to keep
// for the node's next start), until the node stops, which it does within
// its lease.
var ErrLeaseLost = errors.New("this node's lease has expired")

// leaseLive reports whether the database holds self's lease live.
func (s *DB) leaseLive(ctx context.Context, self *nodeSelf) (bool, error) {
	var live int64
	err := s.db.WithContext(ctx).Raw("SELECT count(*) FROM nodes WHERE name = ? AND instance = ? AND lease_expires_at > now()",
		self.name, self.instance).Scan(&live).Error
	return live > 0, err
}

// GetSession returns session id's row, or an error wrapping
// core.ErrSessionNotFound.
func (s *DB) GetSession(ctx context.Context, id string) (core.SessionRecord, error) {
	var m sessionModel
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return core.SessionRecord{}, fmt.Errorf("store: session %q: %w", id, core.ErrSessionNotFound)
	}
	if err != nil {
		return core.SessionRecord{}, fmt.Errorf("store: get session %q: %w", id, err)
	}
	return m.toCore(), nil
}

// ListSessions returns session rows in creation order (then id); with
// statuses given, only rows in one of them.
func (s *DB) ListSessions(ctx context.Context, statuses ...core.Status) ([]core.SessionRecord, error) {
	q := s.db.WithContext(ctx).Order("created_at, id")
	if len(statuses) > 0 {
		q = q.Where("status IN ?", statusNames(statuses))
	}
	var ms []sessionModel
	if err := q.Find(&ms).Error; err != nil {
		return nil, fmt.Errorf("store: list sessions: %w", err)
	}
	recs := make([]core.SessionRecord, len(ms))
	for i, m := range ms {
		recs[i] = m.toCore()
	}
	return recs, nil
}

// QuerySessions returns the session rows q selects, ordered by created_at,
// then id.
func (s *DB) QuerySessions(ctx context.Context, q core.SessionQuery) ([]core.SessionRecord, error) {
	tx := s.db.WithContext(ctx).Order("created_at, id")
	if len(q.Statuses) > 0 {
		tx = tx.Where("status IN ?", statusNames(q.Statuses))
	}
	if q.EnvironmentID != "" {
		tx = tx.Where("environment_id = ?", q.EnvironmentID)
	}
	if q.After != nil {
		at := normTime(q.After.CreatedAt)
		tx = tx.Where("created_at > ? OR (created_at = ? AND id > ?)", at, at, q.After.ID)
	}
	if q.Limit > 0 {
		tx = tx.Limit(q.Limit)
	}
	var ms []sessionModel
	if err := tx.Find(&ms).Error; err != nil {
		return nil, fmt.Errorf("store: query sessions: %w", err)
	}
	recs := make([]core.SessionRecord, len(ms))
	for i, m := range ms {
		recs[i] = m.toCore()
	}
	return recs, nil
}

// DeleteSessions deletes the session rows in one of statuses last updated
// before before, and returns how many it deleted.
func (s *DB) DeleteSessions(ctx context.Context, statuses []core.Status, before time.Time) (int, error) {
	return s.deleteSessions(ctx, statuses, before, false)
}

// DeleteSessionsButNodeLost is core.NodeLostPruner: DeleteSessions,
// leaving alone the rows ERROR with a node_lost reason.
func (s *DB) DeleteSessionsButNodeLost(ctx context.Context, statuses []core.Status, before time.Time) (int, error) {
	return s.deleteSessions(ctx, statuses, before, true)
}

func (s *DB) deleteSessions(ctx context.Context, statuses []core.Status, before time.Time, keepNodeLost bool) (int, error) {
	if len(statuses) == 0 {
		return 0, fmt.Errorf("store: delete sessions: no status given: %w", core.ErrInvalidArgument)
	}
	tx := s.db.WithContext(ctx).
		Where("status IN ? AND updated_at < ?", statusNames(statuses), normTime(before))
	if keepNodeLost {
		tx = tx.Where("NOT (status = ? AND (COALESCE(status_reason, '') = 'node_lost' OR COALESCE(status_reason, '') LIKE 'node_lost:%'))",
			string(core.StatusError))
	}
	res := tx.Delete(&sessionModel{})
	if res.Error != nil {
		return 0, fmt.Errorf("store: delete sessions: %w", res.Error)
	}
	return int(res.RowsAffected), nil
}

func statusNames(statuses []core.Status) []string {
	names := make([]string, len(statuses))
	for i, st := range statuses {
		names[i] = string(st)
	}
	return names
}
