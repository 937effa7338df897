package core

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// UnknownKeptError is Reconcile's refusal to go on when the plugins kept
// sessions of a previous server and the store holds the record of none of
// them. Reconcile would hang every one of them up, as sessions no live
// record claims, and a hang-up cannot be undone; a store that knows none
// of them is far more likely the wrong database than the right one: a new
// one (a mistyped DSN, a deleted SQLite file), an emptied one, another
// server's, or a backup older than every session kept. Reconcile returns
// it before it touches any session or record, so the sessions run on in
// their plugins, and a server started on the right database takes them
// up. Options.HangUpUnknownKept hangs them up instead.
//
// One kept session the store knows, live or ended, is taken as proof
// that the store is the sessions' own: the others kept that it does not
// know are hung up as before (a session whose ended record was deleted,
// a plugin's leftover). A backup older than only some of the sessions
// kept is therefore not caught.
type UnknownKeptError struct {
	// Kept is how many sessions the plugins kept, those of a type their
	// plugin does not serve aside (Survivor.Foreign, hung up whatever the
	// store holds).
	Kept int
	// Empty: the store holds no session record at all, of any status (a
	// new or emptied database). Otherwise it holds records, none of them
	// a kept session's.
	Empty bool
	// Nodes are the other nodes of the cluster whose records the kept
	// sessions are, sorted; none when the store knows none of them.
	Nodes []string
}

func (e *UnknownKeptError) Error() string {
	what := "holds records, but none of those sessions' (another database, or a backup older than them)"
	switch {
	case e.Empty:
		what = "holds no session record at all (a new or emptied database)"
	case len(e.Nodes) > 0:
		what = "records them as sessions of " + plural(len(e.Nodes), "node ", "nodes ") + strings.Join(e.Nodes, ", ") + ", not of this node"
	}
	return fmt.Sprintf("core: the plugins kept %d %s of a previous server, and the database %s: refusing to hang them up; they run on in their plugins",
		e.Kept, plural(e.Kept, "session", "sessions"), what)
}

// plural returns one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// checkKeptKnown returns an *UnknownKeptError when the plugins kept
// sessions (survivors, by id) and the store holds the record of none of
// them as this server's (mayTakeUp), unless Options.HangUpUnknownKept is
// set. live are the store's live records, which usually settle it at
// once: a kept session's record is live unless the session was ended
// meanwhile. Otherwise the store is asked whether it holds any session
// record, and then for the kept ids one by one until one of this server's
// is found: the store may hold an ended record of one (a session whose end
// was recorded but not carried out, or recorded node_lost), which makes it
// the sessions' own.
func (m *Manager) checkKeptKnown(ctx context.Context, survivors map[string][]Survivor, live []SessionRecord) error {
	if len(survivors) == 0 || m.opts.HangUpUnknownKept {
		return nil
	}
	var others []string
	seen := make(map[string]bool, len(live))
	other := func(rec SessionRecord) {
		seen[rec.ID] = true
		if !slices.Contains(others, rec.Node) {
			others = append(others, rec.Node)
		}
	}
	for _, rec := range live {
		if _, ok := survivors[rec.ID]; !ok {
			continue
		}
		if m.mayTakeUp(rec) {
			return nil
		}
		other(rec)
	}
	if len(others) == 0 {
		some, err := m.store.QuerySessions(ctx, SessionQuery{Limit: 1})
		if err != nil {
			return fmt.Errorf("core: looking for any session record: %w", storeFailed(err))
		}
		if len(some) == 0 {
			return &UnknownKeptError{Kept: len(survivors), Empty: true}
		}
	}
	for id := range survivors {
		if seen[id] {
			continue
		}
		rec, err := m.store.GetSession(ctx, id)
		switch {
		case err == nil && m.mayTakeUp(rec):
			return nil
		case err == nil:
			other(rec)
		case !errors.Is(err, ErrSessionNotFound):
			return fmt.Errorf("core: looking for the record of kept session %q: %w", id, storeFailed(err))
		}
	}
	slices.Sort(others)
	return &UnknownKeptError{Kept: len(survivors), Nodes: others}
}

// mayTakeUp reports whether rec is of a session this server may take up:
// its own (ownRecord), or on a node one naming no node (the single
// server's it was, on its data directory).
func (m *Manager) mayTakeUp(rec SessionRecord) bool {
	return rec.Node == "" || m.ownRecord(rec)
}
