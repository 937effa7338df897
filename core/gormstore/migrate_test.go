package gormstore_test

import (
	"context"
	"sync"
	"testing"

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
