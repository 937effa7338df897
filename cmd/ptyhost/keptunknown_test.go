package main

// A server started on a database that knows none of the sessions its
// plugins kept (a deleted SQLite file, a mistyped --db) refuses to start
// and leaves them running, through the real server binary and the real
// HOST plugin.

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// moveDB renames the SQLite database from into to, with the files SQLite
// keeps beside it, and removes what to had.
func moveDB(t *testing.T, from, to string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(to + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if err := os.Rename(from+suffix, to+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
}

// counterRuns fails the test unless the counter the session writes to
// path goes on rising.
func counterRuns(t *testing.T, path, when string) {
	t.Helper()
	before := fileCounter(path)
	e2etest.Eventually(t, 10*time.Second, "the session's counter to rise "+when, func() bool {
		return fileCounter(path) > before+2
	}, nil)
}

// TestE2ENewDatabaseLeavesKeptSessionsRunning: a server stops leaving a
// HOST session running; its database file is moved away (as if deleted),
// and a server started again on the data directory, on a new, empty
// database, refuses to start, saying why and how to go on, and so does
// one given --db naming another new file; the session's process runs on.
// Once the database is back, a server takes the session up. A start on a
// new database with --hang-up-unknown-sessions hangs it up.
func TestE2ENewDatabaseLeavesKeptSessionsRunning(t *testing.T) {
	t.Parallel()
	srv := startKeeping(t, e2etest.Options{})
	counter := filepath.Join(t.TempDir(), "counter")
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c",
		`i=0; while :; do i=$((i+1)); echo $i; echo $i > ` + counter + `; sleep 0.05; done`}})
	a := srv.Attach(t, id)
	a.WaitOutput("3\r\n")
	if err := srv.Stop(t, 30*time.Second); err != nil {
		t.Fatalf("the server's stop: %v\n%s", err, srv.Stderr())
	}

	db := filepath.Join(srv.DataDir, "ptyhost.db")
	saved := filepath.Join(t.TempDir(), "ptyhost.db")
	moveDB(t, db, saved)
	o := srv.Options()
	mistyped := o
	mistyped.Args = append(append([]string(nil), o.Args...), "--db", "sqlite:"+filepath.Join(t.TempDir(), "ptyhsot.db"))
	// A server that hangs its sessions up on every stop still leaves
	// them when its start is refused: it never took them up.
	hangsUp := o
	hangsUp.Args = append(append([]string(nil), o.Args...), "--db", "sqlite:"+filepath.Join(t.TempDir(), "other.db"), "--hang-up-on-stop")
	for _, start := range []e2etest.Options{o, mistyped, hangsUp} {
		out, err := e2etest.RunRefused(t, start, 30*time.Second)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("a start on a new database: %v, want exit status 1\n%s", err, out)
		}
		for _, want := range []string{
			"refusing to start: the plugins on the data directory " + srv.DataDir + " kept 1 session of a previous server",
			"was created by this start", "would hang every one of them up", "--db", "orphan timeout (1m)", "--hang-up-unknown-sessions",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("the refusal lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "hung it up") {
			t.Errorf("the refused start hung a session up:\n%s", out)
		}
		counterRuns(t, counter, "after a refused start")
	}

	// The operator puts the database back: the session is taken up.
	moveDB(t, saved, db)
	srv = srv.Restart(t)
	waitLive(t, srv, id)
	b := srv.Attach(t, id)
	b.WaitOutput("\r\n")
	counterRuns(t, counter, "once taken up")
	if err := srv.Stop(t, 30*time.Second); err != nil {
		t.Fatalf("the server's stop: %v\n%s", err, srv.Stderr())
	}

	// Ending them is meant: the flag hangs them up.
	meant := srv.Options()
	meant.Args = append(meant.Args, "--db", "sqlite:"+filepath.Join(t.TempDir(), "fresh.db"), "--hang-up-unknown-sessions")
	srv = e2etest.Start(t, meant)
	e2etest.Eventually(t, 30*time.Second, "the kept session to be hung up", func() bool {
		return strings.Contains(srv.Stderr(), "hung it up")
	}, srv.Stderr)
	last := fileCounter(counter)
	time.Sleep(300 * time.Millisecond) // six of its ticks
	if now := fileCounter(counter); now != last {
		t.Errorf("the counter went on from %d to %d after the session was hung up", last, now)
	}
}
