package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/gormstore"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// waitStored waits until session id's row in the database dsn holds
// status, failing the test after 10 s. A node answers about its own
// sessions from memory, with their status writes still on their way to
// the database (docs/protocol.md, "Placement"); the other nodes read the
// row. A test that saw a state on one node and then asks another about it
// waits here first.
func waitStored(t *testing.T, dsn, id string, status core.Status) {
	t.Helper()
	db, err := gormstore.Open(t.Context(), dsn, gormstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e2etest.Eventually(t, 10*time.Second, fmt.Sprintf("%s's row to be stored %s", id, status), func() bool {
		rec, err := db.GetSession(t.Context(), id)
		return err == nil && rec.Status == status
	}, func() string { rec, err := db.GetSession(t.Context(), id); return fmt.Sprint(rec, err) })
}
