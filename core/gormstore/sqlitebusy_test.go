package gormstore_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/ptyhost/ptyhost/core"
)

// holdWriteLock takes SQLite's write lock on dsn's database from a
// connection of its own, until the returned func (or the test's end)
// releases it.
func holdWriteLock(t *testing.T, dsn string) (release func()) {
	t.Helper()
	sqlDB, err := sqliteGorm(t, dsn).DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	var released bool
	release = func() {
		if released {
			return
		}
		released = true
		if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
			t.Error(err)
		}
		_ = conn.Close()
	}
	t.Cleanup(release)
	return release
}

// TestSQLiteBusyWaitEndsWithDeadline: a write held up by another
// connection's lock gives up when its context's deadline passes, not
// after the whole busy timeout (10 s): the driver's interrupt does not
// end SQLite's busy wait, so a request's store call, bounded at 5 s,
// waited 10 s.
func TestSQLiteBusyWaitEndsWithDeadline(t *testing.T) {
	dsn := sqliteDSN(t)
	s := openStore(t, dsn, newClock())
	holdWriteLock(t, dsn)
	const deadline, slack = 500 * time.Millisecond, 1500 * time.Millisecond
	for _, tc := range []struct {
		name  string
		write func(ctx context.Context) error
	}{
		{"statement", func(ctx context.Context) error {
			return s.SaveSession(ctx, core.SessionRecord{ID: "a", Status: core.StatusIdle})
		}},
		{"transaction", func(ctx context.Context) error {
			// BEGIN IMMEDIATE waits for the lock.
			return s.Gorm().WithContext(ctx).Transaction(func(tx *gorm.DB) error { return nil })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err := tc.write(ctx)
			if took := time.Since(start); took > deadline+slack {
				t.Errorf("the write gave up after %v; want within %v of its %v deadline", took, slack, deadline)
			}
			if err == nil {
				t.Error("the write succeeded while another connection held the write lock")
			}
		})
	}
}

// TestSQLiteBusyWaitKeepsItsLength: a write with a deadline 10 s away (the
// core's background writer's) or none still waits out a lock held for a
// while, and the busy timeout a short deadline set does not outlast its
// statement.
func TestSQLiteBusyWaitKeepsItsLength(t *testing.T) {
	dsn := sqliteDSN(t)
	s := openStore(t, dsn, newClock())
	sqlDB, err := s.Gorm().DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1) // one connection: each statement sees what the last one set
	busyTimeout := func(ctx context.Context) time.Duration {
		t.Helper()
		var ms int64
		if err := s.Gorm().WithContext(ctx).Raw("PRAGMA busy_timeout").Scan(&ms).Error; err != nil {
			t.Fatal(err)
		}
		return time.Duration(ms) * time.Millisecond
	}
	short, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if got := busyTimeout(short); got > 3*time.Second || got < 2*time.Second {
		t.Errorf("busy_timeout with 3 s left = %v, want at most 3 s", got)
	}
	if got := busyTimeout(context.Background()); got != 10*time.Second {
		t.Errorf("busy_timeout without a deadline, after one with 3 s = %v, want 10s", got)
	}

	release := holdWriteLock(t, dsn)
	time.AfterFunc(time.Second, release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.SaveSession(ctx, core.SessionRecord{ID: "a", Status: core.StatusIdle}); err != nil {
		t.Errorf("a write with 10 s to wait out a lock held 1 s: %v", err)
	}
}
