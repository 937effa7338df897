// Package gormstore keeps ptyhost's environments and session rows in a SQL
// database through GORM. It implements [core.Store]; it is the only package
// of the core that mentions gorm, and its GORM models never leave it.
//
// # Lifecycle
//
// [Open] connects to a database named by a DSN, creates or migrates the
// tables, and returns a [*DB] that owns the connection pool; [DB.Close]
// closes it. Two DSN forms are accepted:
//
//	sqlite:PATH                 embedded SQLite (pure Go), file at PATH; the
//	                            parent directory is created. "sqlite::memory:"
//	                            gives a private in-memory database.
//	postgres://USER@HOST/DB     PostgreSQL (postgresql:// also accepted)
//
// [New] wraps a *gorm.DB the caller already has and migrates it; the caller
// keeps ownership of that pool, so Close on such a store closes nothing.
//
// # Tables
//
// execution_environments holds [core.Environment] (config as JSON text);
// sessions holds [core.SessionRecord], indexed by environment_id and status;
// server_owner holds at most one row, the server that owns the database
// ([DB.Claim]). On PostgreSQL, nodes holds the nodes of a cluster of
// servers sharing the database, each with a lease on the database's clock
// ([DB.RegisterNode], nodes.go), the process that holds it, so that one
// killed on this machine is taken over at once (nodetakeover.go), and a
// fingerprint of its cluster secret, until an operator removes a node
// gone for good ([DB.RemoveNode], noderemove.go);
// cluster holds one row, the cluster's identity, drawn at random once,
// which salts those fingerprints (nodesecret.go); and sessions.node names
// the node that runs each session (empty on a single server).
// Migration is additive (GORM AutoMigrate): it creates missing tables,
// columns and indexes and never drops any.
//
// # Time
//
// Every timestamp is stored and returned in UTC, truncated to the
// microsecond, so values read back equal the values written on both SQLite
// and PostgreSQL. updated_at is owned by the store: every write sets it from
// Options.Now. created_at is taken from the record when set (a restore keeps
// its history) and from Options.Now otherwise.
//
// # Concurrency
//
// A *DB is safe for concurrent use by many goroutines; every method honours
// its ctx. SQLite runs in WAL mode with a busy timeout, so concurrent
// writers in one process wait for each other instead of failing with
// SQLITE_BUSY: on Open's connections, 10 s (or the DSN's busy_timeout) at
// most and no longer than the statement's ctx has until its deadline
// (sqlitebusy.go); a connection of New's waits its own busy timeout,
// whatever the ctx, since SQLite's wait for a lock ignores the driver's
// interrupt. The writes of sessions and environments are single
// statements, outside any transaction (GORM's default one is skipped);
// only claiming the database (DB.Claim), registering a node
// (DB.RegisterNode), recording lost nodes' sessions (nodelost.go) and,
// on PostgreSQL, the migration take one. On PostgreSQL, Open's connections have
// PostgreSQL end a transaction left 5 s without a statement
// (idle_in_transaction_session_timeout, unless the DSN sets it), so that
// the row locks of a process that stalled or was cut off in one do not
// hold up the other nodes' writes for long.
package gormstore
