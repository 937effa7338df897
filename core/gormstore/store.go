package gormstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/ptyhost/ptyhost/core"
)

// Options configures a store. The zero value is ready to use.
type Options struct {
	// Logger receives GORM's messages: failed statements and every SQL
	// statement (without its arguments) at debug, slow statements at warn.
	// Nil discards them. For New, nil keeps the caller's GORM logger.
	Logger *slog.Logger
	// Now is the clock used for created_at and updated_at. Nil means
	// time.Now.
	Now func() time.Time
	// SlowThreshold is the duration above which a statement is logged at
	// warn. Zero means 200ms.
	SlowThreshold time.Duration
	// LeaseTTL is how long a server's claim on the database (Claim) holds
	// without a heartbeat before another server may take it over. Zero
	// means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// LeaseRenewal is how often a claim's heartbeat is written; keep it
	// well under LeaseTTL. Zero means DefaultLeaseRenewal.
	LeaseRenewal time.Duration
	// MaxConns caps the connections to PostgreSQL that the store's
	// requests hold at once (pool.go); the lease's and the claim's
	// renewals have a pool of their own besides. Zero means
	// DefaultMaxConns. SQLite ignores it, as does New.
	MaxConns int
}

// DB is a [core.Store] backed by SQLite or PostgreSQL through GORM.
type DB struct {
	db *gorm.DB
	// renewals is the pool of the lease's and the claim's statements
	// (renewalDB, pool.go); nil where the store has one pool.
	renewals *gorm.DB
	now      func() time.Time
	owned    bool         // Close closes db's pool: Open made it
	log      *slog.Logger // the store's own messages (claims)
	lease    leaseTimes
	// self is the node this process registered as (RegisterNode); nil
	// until it does.
	self atomic.Pointer[nodeSelf]
	// claim is this server's claim on the database (Claim), which fences
	// its session writes; nil until it claims.
	claim atomic.Pointer[Claim]
	// created: the migration of Open or New created the sessions table
	// (Created).
	created bool
}

var (
	_ core.Store  = (*DB)(nil)
	_ core.Pinger = (*DB)(nil)
)

// Open connects to the database named by dsn ("sqlite:PATH",
// "postgres://…" or "postgresql://…"), migrates its tables and returns a
// store that owns the connection pool.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	dialector, single, err := dialectorFor(dsn)
	if err != nil {
		return nil, err
	}
	config := func() *gorm.Config {
		return &gorm.Config{
			Logger:               newGormLogger(opts.logger(), opts.SlowThreshold),
			TranslateError:       true,
			DisableAutomaticPing: true,
			// Every write of the store is one statement: wrapped in a
			// transaction of GORM's, its row locks would outlast it until a
			// COMMIT that a stalled or cut-off process never sends.
			SkipDefaultTransaction: true,
		}
	}
	gdb, err := gorm.Open(dialector, config())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", redact(dsn), err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", redact(dsn), err)
	}
	if single {
		// Every connection to ":memory:" is a database of its own.
		sqlDB.SetMaxOpenConns(1)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("store: connect %s: %w", redact(dsn), err)
	}
	s := &DB{db: gdb, now: opts.clock(), owned: true, log: opts.logger(), lease: opts.leaseTimes()}
	if s.postgres() {
		// The requests' pool is capped, and the renewals get one of
		// their own (pool.go).
		capRequests(sqlDB, opts.maxConns())
		if s.renewals, err = openRenewals(ctx, dsn, config); err != nil {
			_ = sqlDB.Close()
			return nil, err
		}
	}
	if err := s.migrate(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// New wraps db, which the caller opened and keeps owning, and migrates its
// tables. If opts.Logger is set, the store's statements log there instead
// of through db's logger; db itself is not changed. The store's writes
// skip GORM's default transaction, as Open's do. The connections are the
// caller's: on PostgreSQL, the caller sets idle_in_transaction_session_timeout
// on them if it wants the bound Open sets (idleInTransactionTimeout).
func New(db *gorm.DB, opts Options) (*DB, error) {
	if db == nil {
		return nil, errors.New("store: New: nil *gorm.DB")
	}
	sess := &gorm.Session{SkipDefaultTransaction: true}
	if opts.Logger != nil {
		sess.Logger = newGormLogger(opts.Logger, opts.SlowThreshold)
	}
	db = db.Session(sess)
	s := &DB{db: db, now: opts.clock(), log: opts.logger(), lease: opts.leaseTimes()}
	if err := s.migrate(db.Statement.Context); err != nil {
		return nil, err
	}
	return s, nil
}

// Close closes the connection pools if Open created them; for a store
// made by New it does nothing, since the caller owns the pool.
func (s *DB) Close() error {
	if !s.owned {
		return nil
	}
	var errs []error
	for _, db := range []*gorm.DB{s.db, s.renewals} {
		if db == nil {
			continue
		}
		sqlDB, err := db.DB()
		if err == nil {
			err = sqlDB.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("store: close: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	// A ping is answered without reading anything (SQLite's never touches
	// the file): read a row of sessions, so that a database whose file is
	// damaged or gone, or whose sessions table is locked, fails the check.
	var n []int
	if err := s.db.WithContext(ctx).Raw("SELECT 1 FROM sessions LIMIT 1").Scan(&n).Error; err != nil {
		return fmt.Errorf("store: ping: reading sessions: %w", err)
	}
	return nil
}

// Created reports whether Open (or New) created the store's sessions
// table: the database held no ptyhost tables before, so this start made
// it. A server tells its operator so when the plugins kept sessions the
// database cannot know (core.UnknownKeptError): the likely cause is a
// DSN that names another database than the previous server's.
func (s *DB) Created() bool { return s.created }

// Gorm returns the underlying *gorm.DB, for embedders that keep their own
// tables in the same database: on PostgreSQL, when Open made it, the
// request pool, capped at Options.MaxConns (pool.go). It skips GORM's default transaction (wrap
// writes that must go together in Transaction yourself), and on
// PostgreSQL, when Open made it, its connections end a transaction left
// idle for 5 s (idleInTransactionTimeout): keep a transaction's
// statements back to back.
func (s *DB) Gorm() *gorm.DB { return s.db }

func (s *DB) migrate(ctx context.Context) error {
	if ctx == nil {
		ctx = context.Background()
	}
	models := []any{&environmentModel{}, &sessionModel{}, &ownerModel{}}
	if s.postgres() {
		models = append(models, &nodeModel{}, &clusterModel{}) // only PostgreSQL keeps nodes (nodes.go, nodesecret.go)
	}
	db := s.db.WithContext(ctx)
	if !s.postgres() {
		s.created = !db.Migrator().HasTable(&sessionModel{})
		if err := db.AutoMigrate(models...); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		return nil
	}
	// On PostgreSQL, in one transaction holding the migration lock: its
	// DDL is transactional, the lock goes with the transaction (and with
	// a server that dies meanwhile), and it needs one connection only.
	err := db.Transaction(func(tx *gorm.DB) error {
		// SET takes no parameters; the value is a constant of ours.
		if err := tx.Exec(fmt.Sprintf("SET LOCAL lock_timeout = '%dms'", migrationLockWait.Milliseconds())).Error; err != nil {
			return err
		}
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", int64(migrationLockKey)).Error; err != nil {
			return fmt.Errorf("waiting for another server's migration of the database: %w", err)
		}
		// Under the lock: another node's migration cannot be half done.
		s.created = !tx.Migrator().HasTable(&sessionModel{})
		return tx.AutoMigrate(models...)
	})
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	return nil
}

// migrationLockKey names the PostgreSQL advisory lock that servers opening
// one database take around their schema migration: GORM's AutoMigrate
// looks for a table (an index, a column), then creates it, so two nodes
// starting at once could both create it, and one of them fail.
const migrationLockKey = 0x7074_7968_6f73_746d // "ptyhostm"

// migrationLockWait bounds the wait for another server's migration.
const migrationLockWait = 2 * time.Minute

// stamp returns the store's current time as it is kept: UTC, microseconds.
func (s *DB) stamp() time.Time { return normTime(s.now()) }

// normTime is t as the store keeps it: UTC, truncated to the microsecond,
// the precision PostgreSQL keeps.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o Options) clock() func() time.Time {
	if o.Now == nil {
		return time.Now
	}
	return o.Now
}

const acceptedDSNs = `"sqlite:PATH", "sqlite::memory:", "postgres://…" or "postgresql://…"`

// dialectorFor picks the GORM dialector for dsn. single reports an
// in-memory SQLite database, which must be used through one connection.
func dialectorFor(dsn string) (d gorm.Dialector, single bool, err error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path, query, _ := strings.Cut(strings.TrimPrefix(dsn, "sqlite:"), "?")
		if path == "" {
			return nil, false, fmt.Errorf("store: DSN %s has no path: want %s", redact(dsn), acceptedDSNs)
		}
		single = path == ":memory:"
		if !single {
			if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
				return nil, false, fmt.Errorf("store: sqlite: %w", err)
			}
			// A new database is its user's alone (SQLite's -wal and -shm
			// files take its mode): it holds every environment's
			// variables. An existing one keeps the mode it has.
			if f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
				_ = f.Close()
			}
		}
		params := url.Values{}
		params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
		params.Add("_pragma", "journal_mode(WAL)")
		params.Add("_pragma", "synchronous(NORMAL)")
		// BEGIN IMMEDIATE: a transaction takes the write lock up front,
		// waiting through the busy timeout, instead of failing when it
		// upgrades a read lock another writer got in the way of.
		params.Set("_txlock", "immediate")
		conn := path + "?" + params.Encode()
		if query != "" {
			conn += "&" + query
		}
		if err := registerSQLite(); err != nil {
			return nil, false, err
		}
		return &sqlite.Dialector{DriverName: sqliteDriverName, DSN: conn}, single, nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgres.New(postgres.Config{DSN: dsn, OptionOpenDB: []stdlib.OptionOpenDB{
			stdlib.OptionAfterConnect(boundIdleTransactions),
			stdlib.OptionShouldPing(checkOnCheckout),
		}}), false, nil
	default:
		return nil, false, fmt.Errorf("store: unsupported DSN %s: want %s", redact(dsn), acceptedDSNs)
	}
}

// idleInTransactionTimeout is how long PostgreSQL lets a connection of
// Open's sit in a transaction without a statement before it ends the
// session, rolling the transaction back. The store's transactions send
// their statements back to back; one left open is that of a process that
// stalled or was cut off from the database, and its row locks would
// otherwise hold until the operating system gives up on the connection
// (hours, with TCP keepalive's defaults), holding up every write of those
// rows: other nodes' sweeps of a lost node (MarkLostNodes), and the lost
// node's own reclaims once it is back. Well under the default node lease
// (DefaultNodeLeaseTTL), so that a row is freed about as soon as its node
// is known lost.
const idleInTransactionTimeout = 5 * time.Second

// idleTimeoutParam is PostgreSQL's name for idleInTransactionTimeout.
const idleTimeoutParam = "idle_in_transaction_session_timeout"

// boundIdleTransactions sets idleInTransactionTimeout on a new PostgreSQL
// connection, unless the DSN sets the parameter itself (a query parameter
// of the URL, or `options=-c idle_in_transaction_session_timeout=…`, sent
// when the connection starts). A setting of the role or the database
// (ALTER ROLE … SET) is overridden: set it in the DSN instead. A SET rather than a
// startup parameter of our own: a pooler such as PgBouncer refuses
// startup parameters it does not know.
func boundIdleTransactions(ctx context.Context, conn *pgx.Conn) error {
	params := conn.Config().RuntimeParams
	if _, set := params[idleTimeoutParam]; set || strings.Contains(params["options"], idleTimeoutParam) {
		return nil // the DSN's, as a parameter or in libpq's options=-c …
	}
	// SET takes no parameters; the value is a constant of ours.
	if _, err := conn.Exec(ctx, fmt.Sprintf("SET %s = %d", idleTimeoutParam, idleInTransactionTimeout.Milliseconds())); err != nil {
		return fmt.Errorf("setting %s: %w", idleTimeoutParam, err)
	}
	return nil
}

// redact returns dsn fit for an error message, quoted: RedactDSN.
func redact(dsn string) string { return fmt.Sprintf("%q", RedactDSN(dsn)) }

// redactedPassword replaces a password, as url.URL.Redacted does.
const redactedPassword = "xxxxx"

// RedactDSN returns dsn fit for a log line or an error message: a URL's
// user password, and the value of every password or sslpassword parameter
// (libpq's names, the latter the passphrase of the client certificate's
// key) in a URL's query or in a key=value DSN, are masked as xxxxx. What
// does not parse is reduced to its scheme, since a password may hide in it
// where no parser finds it.
func RedactDSN(dsn string) string {
	switch {
	case dsn == "":
		return ""
	case strings.HasPrefix(dsn, "sqlite:"):
		path, query, ok := strings.Cut(dsn, "?")
		if !ok {
			return dsn
		}
		return path + "?" + redactQuery(query)
	case strings.Contains(dsn, "://"):
		if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
			u.RawQuery = redactQuery(u.RawQuery)
			// The fragment means nothing to a driver; dropping it keeps
			// what follows a '#' in a mistyped password out of the log.
			u.Fragment, u.RawFragment = "", ""
			return u.Redacted()
		}
	case strings.Contains(dsn, "="):
		if s, ok := redactKeyValues(dsn); ok {
			return s
		}
		return "<unparsable DSN>"
	}
	scheme, _, ok := strings.Cut(dsn, ":")
	if !ok || strings.ContainsAny(scheme, "@/ =") {
		return "<unparsable DSN>"
	}
	return scheme + ":…"
}

// secretParam reports whether a DSN parameter holds a password. Case is
// ignored: masking too much costs nothing.
func secretParam(name string) bool {
	switch strings.ToLower(name) {
	case "password", "sslpassword":
		return true
	}
	return false
}

// redactQuery masks the value of every secret parameter of a URL's raw
// query, leaving the rest as written. Both '&' and ';' separate
// parameters, so that no way of writing one slips through.
func redactQuery(raw string) string {
	if raw == "" {
		return ""
	}
	var b strings.Builder
	for raw != "" {
		i := strings.IndexAny(raw, "&;")
		param, sep := raw, ""
		if i >= 0 {
			param, sep, raw = raw[:i], raw[i:i+1], raw[i+1:]
		} else {
			raw = ""
		}
		key, _, hasValue := strings.Cut(param, "=")
		name, err := url.QueryUnescape(key)
		if err != nil {
			name = key
		}
		if hasValue && secretParam(name) {
			param = key + "=" + redactedPassword
		}
		b.WriteString(param + sep)
	}
	return b.String()
}

// redactKeyValues masks the secret values of a key=value DSN ("host=db
// password='a b'"), parsed as libpq parses one: values are bare words or
// single-quoted, with backslash escapes in either. ok is false when dsn is
// not such a DSN.
func redactKeyValues(dsn string) (redacted string, ok bool) {
	var b strings.Builder
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' }
	i, copied := 0, 0
	for {
		for i < len(dsn) && isSpace(dsn[i]) {
			i++
		}
		if i == len(dsn) {
			break
		}
		start := i
		for i < len(dsn) && dsn[i] != '=' && !isSpace(dsn[i]) {
			i++
		}
		key := dsn[start:i]
		for i < len(dsn) && isSpace(dsn[i]) {
			i++
		}
		if key == "" || i == len(dsn) || dsn[i] != '=' {
			return "", false
		}
		i++
		for i < len(dsn) && isSpace(dsn[i]) {
			i++
		}
		valueStart := i
		if i < len(dsn) && dsn[i] == '\'' {
			for i++; i < len(dsn) && dsn[i] != '\''; i++ {
				if dsn[i] == '\\' {
					i++
				}
			}
			if i >= len(dsn) {
				return "", false // an unterminated quote
			}
			i++
		} else {
			for ; i < len(dsn) && !isSpace(dsn[i]); i++ {
				if dsn[i] == '\\' {
					i++
				}
			}
			i = min(i, len(dsn))
		}
		if secretParam(key) {
			b.WriteString(dsn[copied:valueStart] + redactedPassword)
			copied = i
		}
	}
	b.WriteString(dsn[copied:])
	return b.String(), true
}
