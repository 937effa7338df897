package core

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// GetSession returns a session's record: a running one from memory, an
// ended one from the store. A session that has exited and lingers here is
// read from the store too: on a node of a cluster its id may have been
// created again on another node meanwhile (an ended session's id is free),
// and then the record is that node's session's, not this lingering copy's
// (ownRecord). Should the store fail or have lost the row, the lingering
// copy is what this node knows.
func (m *Manager) GetSession(ctx context.Context, id string) (SessionRecord, error) {
	m.mu.Lock()
	s := m.sessions[id]
	m.mu.Unlock()
	var lingering *session
	if s != nil {
		s.mu.Lock()
		state := s.state
		s.mu.Unlock()
		switch state {
		case stateRunning:
			return s.snapshot(), nil
		case stateExited:
			lingering = s
		}
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	held := m.writer.capture(id)
	rec, err := m.store.GetSession(sctx, id)
	if lingering != nil && (err != nil || m.ownRecord(rec)) {
		return lingering.snapshot(), nil
	}
	if err != nil {
		if errors.Is(err, ErrSessionNotFound) {
			return SessionRecord{}, fmt.Errorf("%w: %q", ErrSessionNotFound, id)
		}
		return SessionRecord{}, storeFailed(err)
	}
	m.overlayPending(&rec, func(r *SessionRecord) {
		held(r)
		m.writer.overlay(r)
	})
	return rec, nil
}

// ownRecord reports whether rec, a stored record, is of a session of this
// manager's: on a node of a cluster, one that names this node; on a single
// server, any (it owns its database whole, the sessions a cluster left
// there too). Only then may a session in this manager's map, and the
// writes it has yet to make, stand for it: an id created again on another
// node while an exited session of this one lingers has that node's record.
func (m *Manager) ownRecord(rec SessionRecord) bool {
	return m.opts.NodeName == "" || rec.Node == m.opts.NodeName
}

// overlayPending applies the writes this manager has yet to make for
// rec's id, with apply, when they leave a record of its own: they update
// one of its sessions', or replace the row whole for a session it creates.
// Updates of an id whose row is now another node's are of a session of
// this one that ended, and the store refuses them there: rec stays as it
// is.
func (m *Manager) overlayPending(rec *SessionRecord, apply func(*SessionRecord)) {
	r := *rec
	apply(&r)
	if m.ownRecord(r) {
		*rec = r
	}
}

// ListSessions returns every session the store knows, live ones as they are
// in memory, in creation order. QuerySessions returns them a page at a time.
func (m *Manager) ListSessions(ctx context.Context) ([]SessionRecord, error) {
	recs, err := m.store.ListSessions(ctx)
	if err != nil {
		return nil, storeFailed(err)
	}
	for i := range recs {
		m.overlayLive(&recs[i])
	}
	return recs, nil
}

// overlayLive brings rec, a stored record, up to date: with the writes
// not yet in the store (overlayPending), then with the live session's
// record if the session of rec's id is live and started and rec is its
// (ownRecord): a session that lingers here does not hide another node's
// session created under its id since.
func (m *Manager) overlayLive(rec *SessionRecord) {
	m.overlayPending(rec, m.writer.overlay)
	if !m.ownRecord(*rec) {
		return
	}
	m.mu.Lock()
	s := m.sessions[rec.ID]
	m.mu.Unlock()
	if s != nil && s.hasStarted() {
		*rec = s.snapshot()
	}
}

func (s *session) hasStarted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state != stateStarting
}

// Page sizes of QuerySessions.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// ListOptions select the sessions QuerySessions returns.
type ListOptions struct {
	// Statuses, when not empty, keeps the sessions in one of them.
	Statuses []Status
	// EnvironmentID, when set, keeps the sessions of that environment.
	EnvironmentID string
	// Limit is the page size: at most this many sessions. Zero means
	// DefaultListLimit; at most MaxListLimit.
	Limit int
	// Cursor continues the listing after the page whose NextCursor it is.
	Cursor string
	// AllowPartial, when the store fails, has QuerySessions return the
	// page of the sessions this manager holds in memory, with
	// SessionPage.Partial set, rather than the error: those that run here,
	// and those that ended here and linger. Without it, a store that fails
	// is an error wrapping ErrStoreUnavailable.
	AllowPartial bool
}

// SessionPage is one page of sessions, in creation order (then id).
type SessionPage struct {
	Sessions []SessionRecord
	// NextCursor fetches the next page; empty on the last one.
	NextCursor string
	// Partial is nil, or, on a page of the sessions in memory alone
	// (ListOptions.AllowPartial), the store's failure, wrapping
	// ErrStoreUnavailable: the sessions only the store knows (those that
	// ended longer ago, other nodes') are missing.
	Partial error
}

// statuses are the statuses a session may have.
var statuses = []Status{StatusStarting, StatusActive, StatusIdle, StatusTerminated, StatusError}

// QuerySessions returns a page of the sessions o selects, live ones as
// they are in memory. The status a store holds for a live session may lag
// the one in memory by a moment (STARTING for a session that runs, ACTIVE
// for one that has just exited), so the store is asked for the live
// statuses too whenever o.Statuses is set, and the sessions are selected
// by their status in memory: a page may hold fewer than o.Limit sessions
// and still have a NextCursor. A store that fails is an error wrapping
// ErrStoreUnavailable or, with o.AllowPartial, a page of the sessions in
// memory alone, whose Partial says so.
func (m *Manager) QuerySessions(ctx context.Context, o ListOptions) (SessionPage, error) {
	for _, st := range o.Statuses {
		if !slices.Contains(statuses, st) {
			return SessionPage{}, fmt.Errorf("%w: status %q: want one of %s", ErrInvalidArgument, st, joinStatuses(statuses))
		}
	}
	if o.Limit == 0 {
		o.Limit = DefaultListLimit
	}
	if o.Limit < 1 || o.Limit > MaxListLimit {
		return SessionPage{}, fmt.Errorf("%w: limit %d: want 1 to %d", ErrInvalidArgument, o.Limit, MaxListLimit)
	}
	q := SessionQuery{Statuses: withLiveStatuses(o.Statuses), EnvironmentID: o.EnvironmentID, Limit: o.Limit + 1}
	if o.Cursor != "" {
		key, err := decodeCursor(o.Cursor)
		if err != nil {
			return SessionPage{}, err
		}
		q.After = &key
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	recs, err := m.store.QuerySessions(sctx, q)
	if err != nil {
		err = storeFailed(err)
		if o.AllowPartial && errors.Is(err, ErrStoreUnavailable) {
			return m.memoryPage(o, q.After, err), nil
		}
		return SessionPage{}, err
	}
	var page SessionPage
	recs, page.NextCursor = cutPage(recs, o.Limit)
	page.Sessions = make([]SessionRecord, 0, len(recs))
	for _, rec := range recs {
		m.overlayLive(&rec)
		if len(o.Statuses) > 0 && !slices.Contains(o.Statuses, rec.Status) {
			continue
		}
		page.Sessions = append(page.Sessions, rec)
	}
	return page, nil
}

// cutPage returns the first limit of recs and, when there were more, the
// cursor of the next page.
func cutPage(recs []SessionRecord, limit int) ([]SessionRecord, string) {
	if len(recs) <= limit {
		return recs, ""
	}
	recs = recs[:limit]
	last := recs[len(recs)-1]
	return recs, encodeCursor(SessionKey{CreatedAt: last.CreatedAt, ID: last.ID})
}

// memoryPage is QuerySessions's page of the sessions in this manager's
// map, for when the store failed with err: those o selects, after after,
// in the store's order, as they are in memory. Sessions still starting
// are left out: during an outage their first row, which the store's
// list would need, is almost never written, and the create fails.
func (m *Manager) memoryPage(o ListOptions, after *SessionKey, err error) SessionPage {
	m.mu.Lock()
	held := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		held = append(held, s)
	}
	m.mu.Unlock()
	order := func(a SessionRecord, k SessionKey) int {
		if c := a.CreatedAt.Compare(k.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, k.ID)
	}
	recs := []SessionRecord{}
	for _, s := range held {
		s.mu.Lock()
		rec, gone := s.recLocked(), s.state == stateDestroyed || s.state == stateStarting
		s.mu.Unlock()
		if gone || o.EnvironmentID != "" && rec.EnvironmentID != o.EnvironmentID ||
			len(o.Statuses) > 0 && !slices.Contains(o.Statuses, rec.Status) ||
			after != nil && order(rec, *after) <= 0 {
			continue
		}
		recs = append(recs, rec)
	}
	slices.SortFunc(recs, func(a, b SessionRecord) int { return order(a, SessionKey{CreatedAt: b.CreatedAt, ID: b.ID}) })
	page := SessionPage{Partial: err}
	page.Sessions, page.NextCursor = cutPage(recs, o.Limit)
	return page
}

// withLiveStatuses returns sts with the statuses of a live session added;
// none when sts is empty (no filter).
func withLiveStatuses(sts []Status) []Status {
	if len(sts) == 0 {
		return nil
	}
	out := slices.Clone(sts)
	for _, st := range []Status{StatusStarting, StatusActive, StatusIdle} {
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out
}

func joinStatuses(sts []Status) string {
	names := make([]string, len(sts))
	for i, st := range sts {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

// A cursor is the last row's creation time and id, base64url-encoded;
// clients treat it as opaque.
func encodeCursor(k SessionKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte(k.CreatedAt.UTC().Format(time.RFC3339Nano) + " " + k.ID))
}

func decodeCursor(c string) (SessionKey, error) {
	bad := fmt.Errorf("%w: cursor %q: not one this server returned as next_cursor", ErrInvalidArgument, c)
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return SessionKey{}, bad
	}
	at, id, ok := strings.Cut(string(b), " ")
	if !ok || validID(id) != nil {
		return SessionKey{}, bad
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return SessionKey{}, bad
	}
	return SessionKey{CreatedAt: t, ID: id}, nil
}
