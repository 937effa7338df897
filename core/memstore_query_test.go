package core

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"
)

// QuerySessions and DeleteSessions complete memStore as a Store.

func (s *memStore) QuerySessions(_ context.Context, q SessionQuery) ([]SessionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SessionRecord
	for _, id := range s.order {
		rec, ok := s.sessions[id]
		if !ok {
			continue
		}
		if len(q.Statuses) > 0 && !slices.Contains(q.Statuses, rec.Status) {
			continue
		}
		if q.EnvironmentID != "" && rec.EnvironmentID != q.EnvironmentID {
			continue
		}
		if q.After != nil && keyCompare(rec, *q.After) <= 0 {
			continue
		}
		out = append(out, rec)
	}
	slices.SortStableFunc(out, func(a, b SessionRecord) int {
		return keyCompare(a, SessionKey{CreatedAt: b.CreatedAt, ID: b.ID})
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

func keyCompare(rec SessionRecord, k SessionKey) int {
	if c := rec.CreatedAt.Compare(k.CreatedAt); c != 0 {
		return c
	}
	switch {
	case rec.ID < k.ID:
		return -1
	case rec.ID > k.ID:
		return 1
	}
	return 0
}

func (s *memStore) DeleteSessions(_ context.Context, statuses []Status, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, rec := range s.sessions {
		if slices.Contains(statuses, rec.Status) && rec.UpdatedAt.Before(before) {
			delete(s.sessions, id)
			s.order = slices.DeleteFunc(s.order, func(o string) bool { return o == id })
			n++
		}
	}
	return n, nil
}

// DeleteSessionsButNodeLost is NodeLostPruner, as core/gormstore's.
func (s *memStore) DeleteSessionsButNodeLost(ctx context.Context, statuses []Status, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, rec := range s.sessions {
		if slices.Contains(statuses, rec.Status) && rec.UpdatedAt.Before(before) &&
			(rec.Status != StatusError || !IsNodeLost(rec.StatusReason)) {
			delete(s.sessions, id)
			s.order = slices.DeleteFunc(s.order, func(o string) bool { return o == id })
			n++
		}
	}
	return n, nil
}

// outageStore is a Store whose database can be taken down and brought back:
// while down, every call fails.
type outageStore struct {
	Store
	down  atomic.Bool
	pings atomic.Int64
}

var errDatabaseDown = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (o *outageStore) check() error {
	if o.down.Load() {
		return errDatabaseDown
	}
	return nil
}

func (o *outageStore) Ping(context.Context) error {
	o.pings.Add(1)
	return o.check()
}

func (o *outageStore) GetEnvironment(ctx context.Context, id string) (Environment, error) {
	if err := o.check(); err != nil {
		return Environment{}, err
	}
	return o.Store.GetEnvironment(ctx, id)
}

func (o *outageStore) SaveSession(ctx context.Context, rec SessionRecord) error {
	if err := o.check(); err != nil {
		return err
	}
	return o.Store.SaveSession(ctx, rec)
}

func (o *outageStore) UpdateSession(ctx context.Context, id string, u SessionUpdate) error {
	if err := o.check(); err != nil {
		return err
	}
	return o.Store.UpdateSession(ctx, id, u)
}

func (o *outageStore) GetSession(ctx context.Context, id string) (SessionRecord, error) {
	if err := o.check(); err != nil {
		return SessionRecord{}, err
	}
	return o.Store.GetSession(ctx, id)
}

func (o *outageStore) QuerySessions(ctx context.Context, q SessionQuery) ([]SessionRecord, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	return o.Store.QuerySessions(ctx, q)
}
