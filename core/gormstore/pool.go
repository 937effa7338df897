package gormstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
)

// The store's connections to PostgreSQL. Open keeps two pools on one DSN.
// The request pool serves every request's statements; it is capped
// (Options.MaxConns), since a database/sql pool opens a connection for
// every statement that finds none idle: with the sessions table locked,
// every request waiting on it held a backend of its own, and enough of
// them reached the server's max_connections, after which no client of
// the database, other nodes and other applications included, could
// connect. Capped, the requests beyond the cap wait in the pool for
// their own deadlines instead.
//
// The renewal pool, of at most renewalConns connections, serves a
// node's lease (NodeLease: its renewals, the sweep of lost nodes and the
// check of the other nodes' secrets that follow each, Ready and Release)
// and a single server's claim (Claim: its heartbeats and Release). On the
// request pool, a renewal would wait behind requests hung on a lock for as
// long as they hang, and the node would lose its lease, or the single
// server its claim, for nothing but its own load. It connects at Open and
// keeps its connections idle without a time limit, so that a database
// that other clients filled up to max_connections since leaves the
// renewals theirs. Both pools set idleInTransactionTimeout on every
// connection (boundIdleTransactions). SQLite has neither: it keeps one
// pool, as it did.

// checkOnCheckout says whether the driver should check a connection it
// takes from a pool with a round trip to the server (a ping) before it
// sends a statement on it: one last taken from the pool more than a
// second before, as the driver's default, and one on which the server has
// sent something unasked (serverSpoke, or bytes the driver read ahead and
// holds). A connection PostgreSQL ended
// (pg_terminate_backend, a restart of the server, a failover) has the
// server's farewell, or the end of the stream, waiting on its socket: it
// fails the ping and is replaced by a new one, with nothing sent. With the
// default alone, the first statement on a connection used less than a
// second before failed, and the request that made it; retrying a failed
// statement instead would run a write again that may have been applied.
// Looking at the socket costs a system call, not a round trip per
// statement.
func checkOnCheckout(_ context.Context, p stdlib.ShouldPingParams) bool {
	pc := p.Conn.PgConn()
	return p.IdleDuration > time.Second || pc.Frontend().ReadBufferLen() > 0 || serverSpoke(pc.Conn())
}

// DefaultMaxConns is the most connections to PostgreSQL that the requests
// of a store made by Open hold at once, unless Options.MaxConns says
// otherwise. The renewal pool's renewalConns come on top.
const DefaultMaxConns = 20

// renewalConns is the size of the renewal pool: the node lease's renewal
// loop uses one connection at a time, and a claim's heartbeat another.
const renewalConns = 2

// requestIdleTime is how long a request connection stays open unused,
// so that a burst of requests does not hold its connections for good.
const requestIdleTime = time.Minute

// maxConns is the request pool's cap, the default applied.
func (o Options) maxConns() int {
	if o.MaxConns <= 0 {
		return DefaultMaxConns
	}
	return o.MaxConns
}

// capRequests caps the request pool at n connections, of which as many
// stay idle for requestIdleTime.
func capRequests(sqlDB *sql.DB, n int) {
	sqlDB.SetMaxOpenConns(n)
	sqlDB.SetMaxIdleConns(n)
	sqlDB.SetConnMaxIdleTime(requestIdleTime)
}

// openRenewals opens the renewal pool on dsn, a PostgreSQL DSN, with a
// configuration of config's making, and connects it.
func openRenewals(ctx context.Context, dsn string, config func() *gorm.Config) (*gorm.DB, error) {
	dialector, _, err := dialectorFor(dsn)
	if err != nil {
		return nil, err
	}
	gdb, err := gorm.Open(dialector, config())
	if err != nil {
		return nil, fmt.Errorf("store: open %s for renewals: %w", redact(dsn), err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("store: open %s for renewals: %w", redact(dsn), err)
	}
	sqlDB.SetMaxOpenConns(renewalConns)
	sqlDB.SetMaxIdleConns(renewalConns)
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("store: connect %s for renewals: %w", redact(dsn), err)
	}
	return gdb, nil
}

// renewalDB is the pool of the lease's and the claim's statements: the
// renewal pool where Open made one, else the store's one pool (SQLite, or
// a store made by New, whose pool is the caller's).
func (s *DB) renewalDB() *gorm.DB {
	if s.renewals != nil {
		return s.renewals
	}
	return s.db
}
