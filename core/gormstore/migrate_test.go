package gormstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/gormstore"
)

// Servers opening one empty PostgreSQL database at once all migrate it:
// none fails on a table, index or type another one created meanwhile.
func TestConcurrentMigrations(t *testing.T) {
	dsn := postgresFreshDSN(t)
	const servers = 6
	var wg sync.WaitGroup
	errs := make([]error, servers)
	for i := range servers {
		wg.Go(func() {
			s, err := gormstore.Open(context.Background(), dsn, gormstore.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = s.Close()
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("server %d: %v", i, err)
		}
	}
}

// An embedder's *gorm.DB with a single connection is migrated too: the
// migration holds one connection, not one for its lock and another for
// its statements.
func TestMigrationOnOneConnection(t *testing.T) {
	db := postgresGorm(t, postgresFreshDSN(t))
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	sqlDB.SetMaxOpenConns(1)
	done := make(chan error, 1)
	go func() {
		_, err := gormstore.New(db, gormstore.Options{})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("New did not return on a database of one connection")
	}
}
