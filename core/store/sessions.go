package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/ptyhost/ptyhost/core"
)

// SaveSession inserts rec, or replaces the whole row when its id exists. A
// zero CreatedAt is set from Options.Now; UpdatedAt always is.
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
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		UpdateAll: true,
	}).Create(&m).Error
	if err != nil {
		return fmt.Errorf("store: save session %q: %w", rec.ID, err)
	}
	return nil
}

// UpdateSession writes the non-nil fields of u to session id's row and sets
// its updated_at, or returns an error wrapping core.ErrSessionNotFound. A
// LastActiveAt pointing at the zero time clears the column.
func (s *DB) UpdateSession(ctx context.Context, id string, u core.SessionUpdate) error {
	cols := updateColumns(u)
	cols["updated_at"] = s.stamp()
	res := s.db.WithContext(ctx).Model(&sessionModel{}).Where("id = ?", id).Updates(cols)
	if res.Error != nil {
		return fmt.Errorf("store: update session %q: %w", id, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("store: session %q: %w", id, core.ErrSessionNotFound)
	}
	return nil
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
		names := make([]string, len(statuses))
		for i, st := range statuses {
			names[i] = string(st)
		}
		q = q.Where("status IN ?", names)
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
