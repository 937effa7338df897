package gormstore_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/ptyhost/ptyhost/core/gormstore"
)

// hungRequests locks the sessions table of dsn's schema in a transaction
// of another client, and starts n reads of s that wait on it, each for
// up to within. The returned function ends the lock and waits for the
// reads, failing the test if one failed after the lock ended.
func hungRequests(t *testing.T, dsn string, s *gormstore.DB, n int, within time.Duration) (unlock func()) {
	t.Helper()
	tx := postgresGorm(t, dsn).Begin()
	if err := tx.Exec("LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE").Error; err != nil {
		t.Fatalf("lock sessions: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), within)
			defer cancel()
			if _, err := s.ListSessions(ctx); err != nil {
				errs <- err
			}
		})
	}
	var once sync.Once
	unlock = func() {
		once.Do(func() {
			if err := tx.Rollback().Error; err != nil {
				t.Errorf("unlock sessions: %v", err)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("a read that waited on the lock: %v", err)
			}
		})
	}
	// A test that fails before it unlocks does not leave the reads hung.
	t.Cleanup(unlock)
	return unlock
}

// withAppName returns dsn with application_name set to name, by which
// pg_stat_activity tells its backends.
func withAppName(t *testing.T, dsn, name string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// appBackends counts the server's backends of application name.
func appBackends(t *testing.T, admin *gorm.DB, name string) int {
	t.Helper()
	var n int
	if err := admin.Raw("SELECT count(*) FROM pg_stat_activity WHERE application_name = ?", name).Scan(&n).Error; err != nil {
		t.Fatalf("pg_stat_activity: %v", err)
	}
	return n
}

// TestPoolCapsRequests: with the sessions table locked, many concurrent
// reads open no more backends than the request pool's cap (and the
// renewal pool's two), and all of them succeed once the lock ends.
func TestPoolCapsRequests(t *testing.T) {
	const app, capped, reads = "ptyhost_pool_cap", 4, 40
	dsn := withAppName(t, postgresFreshDSN(t), app)
	admin := postgresGorm(t, postgresDSN(t))
	s := openWith(t, dsn, gormstore.Options{MaxConns: capped})
	unlock := hungRequests(t, dsn, s, reads, 30*time.Second)
	waitFor(t, 10*time.Second, "the reads hung", func() bool { return appBackends(t, admin, app) >= capped })
	// The reads hang; a pool without a cap would open one backend for
	// each within this while.
	most := 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		most = max(most, appBackends(t, admin, app))
	}
	unlock()
	if most > capped+2 {
		t.Errorf("%d reads hung on a lock opened %d backends, want at most %d (the cap) + 2 (the renewals)", reads, most, capped)
	}
	if most < capped {
		t.Errorf("saw %d backends, want the cap's %d at least: is application_name counted?", most, capped)
	}
}

// TestPoolNodeLeaseRenewsWhileRequestsHang: a node whose requests
// exhausted the request pool, hung on a lock for longer than the lease,
// keeps renewing its lease through a pool of its own.
func TestPoolNodeLeaseRenewsWhileRequestsHang(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	dsn := postgresFreshDSN(t)
	s := openWith(t, dsn, gormstore.Options{MaxConns: 2})
	l := mustRegister(t, s, gormstore.NodeOptions{Name: "n1", URL: "http://n1:7680", LeaseTTL: ttl, Renewal: 250 * time.Millisecond})
	hungRequests(t, dsn, s, 8, 4*ttl)
	sqlDB, err := s.Gorm().DB()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the request pool exhausted", func() bool { return sqlDB.Stats().InUse == 2 })
	observer := postgresGorm(t, dsn)
	select {
	case <-l.Lost():
		t.Fatal("the node lost its lease while its requests hung on a lock")
	case <-time.After(3 * ttl):
	}
	var live bool
	if err := observer.Raw("SELECT lease_expires_at > now() FROM nodes WHERE name = 'n1'").Scan(&live).Error; err != nil {
		t.Fatal(err)
	}
	if !live {
		t.Error("the node's lease expired in the database while its requests hung on a lock")
	}
}

// TestPoolClaimHeartbeatsWhileRequestsHang: a single server whose
// requests exhausted the request pool, hung on a lock for longer than
// its claim's lease, keeps its claim: another server is refused.
func TestPoolClaimHeartbeatsWhileRequestsHang(t *testing.T) {
	const ttl = time.Second
	dsn := postgresFreshDSN(t)
	opts := gormstore.Options{MaxConns: 2, LeaseTTL: ttl, LeaseRenewal: 200 * time.Millisecond}
	s := openWith(t, dsn, opts)
	// Opened before the lock: its migration reads the sessions table.
	other := openWith(t, dsn, opts)
	c, err := s.Claim(context.Background(), gormstore.Owner{Hostname: "a", DataDir: "/a"})
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	defer func() {
		if err := c.Release(context.Background()); err != nil {
			t.Errorf("Release: %v", err)
		}
	}()
	hungRequests(t, dsn, s, 8, 5*ttl)
	sqlDB, err := s.Gorm().DB()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the request pool exhausted", func() bool { return sqlDB.Stats().InUse == 2 })
	time.Sleep(3 * ttl)
	// Another machine's server, which cannot see whether the owner's
	// process runs: only a live heartbeat refuses it.
	if c2, err := other.Claim(context.Background(), gormstore.Owner{Hostname: "b", DataDir: "/b"}); !errors.Is(err, gormstore.ErrOwned) {
		if err == nil {
			_ = c2.Release(context.Background())
		}
		t.Fatalf("another server's Claim while the owner's requests hung: %v, want ErrOwned", err)
	}
	select {
	case <-c.Lost():
		t.Error("the claim was lost")
	default:
	}
}
