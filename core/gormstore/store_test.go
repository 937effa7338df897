package gormstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/ptyhost/ptyhost/core/gormstore"
)

const pgMissing = "PTYHOST_TEST_POSTGRES_DSN not set: run scripts/services/postgres.sh start (make test does)"

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := checkLeaks(5 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// checkLeaks fails when, after the deadline, a goroutine of a *sql.DB
// nobody closed is still running.
func checkLeaks(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		leaked := strings.Contains(stacks, "database/sql.(*DB).connectionOpener")
		if !leaked {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leaked goroutines (a store or *sql.DB not closed):\n%s", stacks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// backend is a database the suite runs against.
type backend struct {
	name string
	// freshDSN returns the DSN of an empty database of the test's own,
	// removed when the test ends.
	freshDSN func(t *testing.T) string
	// gormOpen opens dsn the way an embedder would, without package gormstore.
	gormOpen func(t *testing.T, dsn string) *gorm.DB
}

func backends() []backend {
	return []backend{
		{name: "sqlite", freshDSN: sqliteDSN, gormOpen: sqliteGorm},
		{name: "postgres", freshDSN: postgresFreshDSN, gormOpen: postgresGorm},
	}
}

func sqliteDSN(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "state", "ptyhost.db")
}

func sqliteGorm(t *testing.T, dsn string) *gorm.DB {
	t.Helper()
	return gormOpen(t, sqlite.Open(strings.TrimPrefix(dsn, "sqlite:")+"?_pragma=busy_timeout(10000)"))
}

func postgresGorm(t *testing.T, dsn string) *gorm.DB {
	t.Helper()
	return gormOpen(t, postgres.Open(dsn))
}

func gormOpen(t *testing.T, d gorm.Dialector) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(d, &gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatalf("gorm.Open: %v", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sqlDB.Close() })
	return db
}

// postgresDSN returns the test server's DSN, or skips the test (fails it
// under PTYHOST_INTEGRATION=1) when there is none.
func postgresDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("PTYHOST_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("PTYHOST_INTEGRATION") == "1" {
			t.Fatal(pgMissing)
		}
		t.Skip(pgMissing)
	}
	return dsn
}

// postgresFreshDSN creates a schema of the test's own, dropped when it ends,
// and returns a DSN whose search_path is that schema.
func postgresFreshDSN(t *testing.T) string {
	t.Helper()
	base := postgresDSN(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	schema := "ptyhost_test_" + hex.EncodeToString(b[:])
	admin := postgresGorm(t, base)
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := admin.Exec("DROP SCHEMA " + schema + " CASCADE").Error; err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("PTYHOST_TEST_POSTGRES_DSN: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

// newClock starts at a time with nanoseconds and a zone other than UTC, so
// tests see the store normalise both.
func newClock() *clock {
	return &clock{t: time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on by d and returns the new time as the store
// keeps it.
func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return kept(c.t)
}

// kept is t as the store returns it.
func kept(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// openStore opens dsn with clk and closes the store when the test ends.
func openStore(t *testing.T, dsn string, clk *clock) *gormstore.DB {
	t.Helper()
	s, err := gormstore.Open(context.Background(), dsn, gormstore.Options{Now: clk.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func ptr[T any](v T) *T { return &v }
