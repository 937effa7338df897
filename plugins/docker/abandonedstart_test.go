package main

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// A create that the spawn's context ends (a spawn timeout, a destroy
// during the start) is one the daemon finishes all the same: the plugin
// removes the container, by its name, once the daemon has made it, and
// does not blame the direct terminal.
func TestAbandonedCreateIsRemoved(t *testing.T) {
	for _, terminal := range []string{TerminalDaemon, ""} {
		name := terminal
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			// The spawn's context ends once the create has reached the
			// daemon: a timeout of its own could end before the plugin
			// sent it on a loaded machine, and there would be no create
			// to finish.
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			fe := startFakeEngine(t, func(fe *fakeEngine) { fe.createDelay = 500 * time.Millisecond; fe.onCreate = cancel })
			e := directOn(t, fe)
			_, err := e.Spawn(ctx, request("abandoned", engineConfig(fe, map[string]any{"terminal": terminal})))
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Spawn: %v; want the context's end", err)
			}
			select {
			case <-fe.created:
			case <-time.After(5 * time.Second):
				t.Fatal("the daemon did not finish the create")
			}
			eventually(t, 3*time.Second, "removing the container of the create given up", func() bool {
				return len(fe.left()) == 0
			})
			if why := blamed(t, e, fe); why != nil {
				t.Errorf("the daemon is taken to lack a direct terminal: %v", why)
			}
		})
	}
}

// An exec whose start the spawn's context ends is started by the daemon
// all the same: the plugin kills the session's processes in the shared
// container by their token.
func TestAbandonedExecIsKilled(t *testing.T) {
	// As above, the context ends once the start has reached the daemon.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	fd := startFakeDaemon(t)
	fd.mu.Lock()
	fd.execStartDelay = 500 * time.Millisecond
	fd.onExecStart = cancel
	fd.mu.Unlock()
	cfg := execTargetConfig(t, fd, nil, []string{"/bin/sh"}, nil)
	e := New(nil)
	t.Cleanup(e.Close)
	_, err := e.Spawn(ctx, request("abandoned-exec", cfg))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Spawn: %v; want the context's end", err)
	}
	_, token, _ := fd.sessionExec(t)
	eventually(t, 3*time.Second, "killing the exec of the start given up", func() bool {
		return fd.alive(token) == 0
	})
	if sent := fd.signalsSent(); !slices.Contains(sent, "KILL") {
		t.Errorf("signals sent %q, want KILL", sent)
	}
}
