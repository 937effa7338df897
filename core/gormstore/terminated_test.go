package gormstore_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/ptyhost/ptyhost/core"
)

// terminateBackends has PostgreSQL end every backend of application name,
// as an operator's pg_terminate_backend or a failover's does, and waits
// until they are gone.
func terminateBackends(t *testing.T, admin *gorm.DB, name string) {
	t.Helper()
	if err := admin.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = ?", name).Error; err != nil {
		t.Fatalf("pg_terminate_backend: %v", err)
	}
	for deadline := time.Now().Add(5 * time.Second); appBackends(t, admin, name) > 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the terminated backends are still there after 5 s")
		}
	}
}

// TestTerminatedConnections: after PostgreSQL ends the store's connections
// (pg_terminate_backend, a restart of the server, a failover's), the next
// request is served on a new one; the first failed, on a connection
// checked out less than a second before, which the driver does not check.
func TestTerminatedConnections(t *testing.T) {
	const app = "ptyhost_test_terminated"
	dsn := withAppName(t, postgresFreshDSN(t), app)
	admin := postgresGorm(t, postgresDSN(t))
	s := openStore(t, dsn, newClock())
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"read", func() error { _, err := s.ListSessions(ctx); return err }},
		{"write", func() error { return s.SaveSession(ctx, core.SessionRecord{ID: "a", Status: core.StatusIdle}) }},
		{"transaction", func() error {
			return s.Gorm().WithContext(ctx).Transaction(func(tx *gorm.DB) error { return tx.Exec("SELECT 1").Error })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.ListSessions(ctx); err != nil {
				t.Fatal(err)
			}
			terminateBackends(t, admin, app)
			if err := tc.call(); err != nil {
				t.Errorf("the first call after the connections were terminated: %v", err)
			}
			if err := tc.call(); err != nil {
				t.Errorf("the second call: %v", err)
			}
		})
	}
}
