package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// A session row that another transaction keeps locked delays that
// session's status writes, not the creates of other sessions: each new
// session's first save goes ahead of the write waiting on the lock.
func TestPostgresLockedRowDoesNotBlockCreates(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	srv := startServerWith(t, "--db", dsn)
	held := srv.CreateSession(t, map[string]any{"id": "held", "environment_id": "host", "command": []string{"sleep", "3600"}})

	other, err := gormstore.Open(t.Context(), dsn, gormstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	tx := other.Gorm().Begin()
	if tx.Error != nil {
		t.Fatal(tx.Error)
	}
	defer tx.Rollback()
	// The store's connections end a transaction left idle; this one is
	// held on purpose.
	if err := tx.Exec("SET LOCAL idle_in_transaction_session_timeout = 0").Error; err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.Raw("SELECT count(*) FROM (SELECT id FROM sessions WHERE id = ? FOR UPDATE) locked", held).Scan(&n).Error; err != nil || n != 1 {
		t.Fatalf("locking the row: %d rows, %v", n, err)
	}

	// A client attaching makes a status write to the locked row, which
	// waits on the lock.
	srv.Attach(t, held)
	e2etest.Eventually(t, 10*time.Second, "the server's write to wait on the locked row", func() bool {
		var waiting int
		other.Gorm().Raw("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()").Scan(&waiting)
		return waiting > 0
	}, nil)

	for i := range 3 {
		id := fmt.Sprintf("new%d", i)
		start := time.Now()
		code, body := srv.Request(t, "POST", "/api/v1/sessions", fmt.Sprintf(`{"id":%q,"environment_id":"host","command":["sleep","3600"]}`, id))
		if code != 201 {
			t.Fatalf("create %s while a row is locked: %d %v (after %v)", id, code, body, time.Since(start).Round(time.Millisecond))
		}
	}

	if err := tx.Commit().Error; err != nil {
		t.Fatal(err)
	}
	e2etest.Eventually(t, 15*time.Second, "the held write to land", func() bool {
		var conns int
		other.Gorm().Raw("SELECT active_connections FROM sessions WHERE id = ?", held).Scan(&conns)
		return conns == 1
	}, nil)
}
