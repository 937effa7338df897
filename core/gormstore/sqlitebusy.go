package gormstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/glebarez/sqlite"
)

// sqliteBusyTimeout is the longest an SQLite writer of Open's waits for
// another one's lock before it gives up with SQLITE_BUSY; a statement
// whose context ends sooner waits until then only (busyConn).
const sqliteBusyTimeout = 10 * time.Second

// busyStep is the granularity of the busy timeout a statement's deadline
// sets: rounded down to it, so that statements made with about the same
// time left (a writer's, 10 s each) set it once, not once each.
const busyStep = 100 * time.Millisecond

// SQLite's busy wait ignores the context: the driver interrupts the
// statement when it ends, but the wait for another connection's lock
// (BEGIN IMMEDIATE, or any write) sleeps and retries until the
// connection's busy timeout, whatever the interrupt says. A request's
// store call, bounded at 5 s by the core, waited the whole 10 s for a lock
// another writer held. Open's connections therefore go through
// sqliteDriverName, which sets each connection's busy timeout, before a
// statement or a transaction begins, to the time left until its context's
// deadline, at most the timeout the connection was opened with: a request
// gives up with its deadline, and the core's background writes, with 10 s
// of their own, wait as long as before.

// sqliteDriverName is the database/sql driver of Open's SQLite
// connections: glebarez's, through busyDriver.
const sqliteDriverName = "ptyhost-sqlite"

var registerSQLite = sync.OnceValue(func() error {
	db, err := sql.Open(sqlite.DriverName, "")
	if err != nil {
		return fmt.Errorf("store: sqlite driver: %w", err)
	}
	sql.Register(sqliteDriverName, busyDriver{db.Driver()})
	return db.Close()
})

// busyDriver opens glebarez's connections as busyConns.
type busyDriver struct{ driver.Driver }

func (d busyDriver) Open(name string) (driver.Conn, error) {
	c, err := d.Driver.Open(name)
	if err != nil {
		return nil, err
	}
	inner, ok := c.(sqliteConn)
	if !ok {
		_ = c.Close()
		return nil, fmt.Errorf("store: sqlite driver: a connection of type %T lacks a context method", c)
	}
	bc := &busyConn{sqliteConn: inner}
	if bc.max, err = bc.busyTimeout(); err != nil {
		_ = c.Close()
		return nil, err
	}
	bc.set = bc.max
	return bc, nil
}

// sqliteConn is what glebarez's connections implement.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
}

// busyConn is a connection whose busy timeout follows each statement's
// context: the time left until its deadline, rounded down to busyStep
// (at least a millisecond), at most max, the timeout the DSN gave the
// connection.
type busyConn struct {
	sqliteConn
	max, set time.Duration
}

// follow sets the busy timeout for a statement made with ctx.
func (c *busyConn) follow(ctx context.Context) error {
	wait := c.max
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		if left > busyStep {
			left = left.Truncate(busyStep)
		}
		// At least a millisecond: 0 would turn the wait off, and a
		// statement whose deadline is near fail at once.
		wait = max(min(wait, left), time.Millisecond)
	}
	if wait == c.set {
		return nil
	}
	// PRAGMA takes no parameters; the value is a number of ours.
	q := fmt.Sprintf("PRAGMA busy_timeout = %d", wait.Milliseconds())
	if _, err := c.sqliteConn.ExecContext(context.Background(), q, nil); err != nil {
		return err
	}
	c.set = wait
	return nil
}

// busyTimeout reads the connection's busy timeout.
func (c *busyConn) busyTimeout() (time.Duration, error) {
	rows, err := c.sqliteConn.QueryContext(context.Background(), "PRAGMA busy_timeout", nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	v := make([]driver.Value, 1)
	if err := rows.Next(v); err != nil {
		if err == io.EOF {
			err = fmt.Errorf("store: sqlite: PRAGMA busy_timeout returned no row")
		}
		return 0, err
	}
	ms, ok := v[0].(int64)
	if !ok {
		return 0, fmt.Errorf("store: sqlite: PRAGMA busy_timeout returned %T", v[0])
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func (c *busyConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.follow(ctx); err != nil {
		return nil, err
	}
	return c.sqliteConn.BeginTx(ctx, opts)
}

func (c *busyConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if err := c.follow(ctx); err != nil {
		return nil, err
	}
	return c.sqliteConn.ExecContext(ctx, query, args)
}

func (c *busyConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if err := c.follow(ctx); err != nil {
		return nil, err
	}
	return c.sqliteConn.QueryContext(ctx, query, args)
}

func (c *busyConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	inner, ok := s.(sqliteStmt)
	if !ok {
		_ = s.Close()
		return nil, fmt.Errorf("store: sqlite driver: a statement of type %T lacks a context method", s)
	}
	return &busyStmt{sqliteStmt: inner, c: c}, nil
}

// Prepare is PrepareContext without a deadline.
func (c *busyConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// Begin is BeginTx without a deadline.
func (c *busyConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// sqliteStmt is what glebarez's prepared statements implement.
type sqliteStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// busyStmt is a prepared statement of a busyConn, whose executions set
// the busy timeout as the connection's statements do.
type busyStmt struct {
	sqliteStmt
	c *busyConn
}

func (s *busyStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := s.c.follow(ctx); err != nil {
		return nil, err
	}
	return s.sqliteStmt.ExecContext(ctx, args)
}

func (s *busyStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := s.c.follow(ctx); err != nil {
		return nil, err
	}
	return s.sqliteStmt.QueryContext(ctx, args)
}
