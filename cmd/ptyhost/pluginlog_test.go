package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// A plugin left running by a server that died logs to a file of its own,
// and the next server relays it: what the plugin logged while no server
// ran, with the time it did, and what it logs once reattached to, which
// no pipe carries any more.
func TestReattachedPluginLogIsRelayed(t *testing.T) {
	srv := startKeeping(t, e2etest.Options{})
	srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}})
	srv.Kill(t)
	// The plugin notices its parent's death within a quarter of a second,
	// and from then on logs to its file: the next server's arrival is
	// logged there too.
	deadline := time.Now().Add(10 * time.Second)
	for {
		logs, _ := filepath.Glob(filepath.Join(srv.DataDir, "run", "plugin-*.log"))
		if len(logs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the plugin of the killed server keeps no log file")
		}
		time.Sleep(10 * time.Millisecond)
	}
	next := srv.Restart(t)
	for _, want := range []string{
		"the host process is gone; keeping the sessions for the next host", // while no server ran
		"a host is back; the orphan timer is stopped",                      // to the server reattaching
	} {
		awaitLog(t, next, want)
	}
	if log := next.Stderr(); !strings.Contains(log, "logged_at=") {
		t.Errorf("the relayed lines do not say when the plugin logged them:\n%s", log)
	}
}

// awaitLog waits until srv's log has a line holding want.
func awaitLog(t *testing.T, srv interface{ Stderr() string }, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(srv.Stderr(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the server's log has no %q:\n%s", want, srv.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
