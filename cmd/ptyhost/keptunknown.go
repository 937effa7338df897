package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
)

// A server whose plugins kept sessions its database knows nothing of
// refuses to start (core.UnknownKeptError) rather than hang them all up:
// the likely cause is a configuration slip (a mistyped --db, a deleted or
// replaced SQLite file), and a hang-up cannot be undone. Refusing is the
// state an operator cannot miss and that needs nothing undone: the
// sessions run on in their plugins, untouched, and the next start on the
// right database takes them up. --hang-up-unknown-sessions, for one
// start, ends them when that is meant.

// keptUnknownError is serve's error for err, Reconcile's refusal: what
// the plugins kept, what the database is, the likely causes and the ways
// on. Any other err is returned as it is.
func keptUnknownError(c serveConfig, db *gormstore.DB, err error) error {
	var uk *core.UnknownKeptError
	if !errors.As(err, &uk) {
		return err
	}
	what := "holds session records, but none of theirs"
	switch {
	case db.Created():
		what = "was created by this start (it had no ptyhost tables)"
	case uk.Empty:
		what = "holds no session record at all"
	}
	sessions := "sessions"
	if uk.Kept == 1 {
		sessions = "session"
	}
	if len(uk.Nodes) > 0 {
		// The right database, but another node's sessions: the node's
		// name or its data directory is not the previous server's.
		of := "node " + uk.Nodes[0]
		if len(uk.Nodes) > 1 {
			of = "nodes " + strings.Join(uk.Nodes, ", ")
		}
		return fmt.Errorf("refusing to start: the plugins on the data directory %s kept %d %s of a previous server, and the database records them as %s's, not node %s's; "+
			"starting would hang every one of them up, for good, from under the node that runs them. "+
			"Likely --node-name (PTYHOST_NODE_NAME, or the configuration file's node_name) is not the name this data directory's node had, or --data-dir (PTYHOST_DATA_DIR) is another node's. "+
			"Start %s on this data directory to take the sessions up: they run on in their plugins until the orphan timeout (%s) after this exit. "+
			"To end them instead, start once with --hang-up-unknown-sessions",
			c.dataDir, uk.Kept, sessions, of, c.cluster.nodeName, of, humanDuration(c.orphanTimeout))
	}
	return fmt.Errorf("refusing to start: the plugins on the data directory %s kept %d %s of a previous server, and the database %s %s; "+
		"starting would hang every one of them up, for good. "+
		"Likely --db (PTYHOST_DB, or the configuration file's db) names another database than the previous server's, or its file was deleted, moved or replaced by an older backup. "+
		"Start the server on the previous server's database to take the sessions up: they run on in their plugins until the orphan timeout (%s) after this exit. "+
		"To end them instead, start once with --hang-up-unknown-sessions",
		c.dataDir, uk.Kept, sessions, gormstore.RedactDSN(c.db), what, humanDuration(c.orphanTimeout))
}
