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
	e2etest.Eventually(t, 10*time.Second, "the plugin of the killed server to keep a log file", func() bool {
		logs, _ := filepath.Glob(filepath.Join(srv.DataDir, "run", "plugin-*.log"))
		return len(logs) > 0
	}, srv.Stderr)
	next := srv.Restart(t)
	for _, want := range []string{
		"the host process is gone; keeping the sessions for the next host", // while no server ran
		"a host is back; the orphan timer is stopped",                      // to the server reattaching
	} {
		e2etest.Eventually(t, 10*time.Second, "the server's log to have "+want, func() bool {
			return strings.Contains(next.Stderr(), want)
		}, next.Stderr)
	}
	if log := next.Stderr(); !strings.Contains(log, "logged_at=") {
		t.Errorf("the relayed lines do not say when the plugin logged them:\n%s", log)
	}
}
