package main

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestClusterNodeRenamedOnDataDirRefuses: node c stops, leaving its
// session running in its plugins; a node started on c's data directory
// under another name (--node-name changed, or the wrong --data-dir)
// refuses to start, naming node c and how to go on, and leaves the session
// running, where it used to hang it up as one no live record claims. c
// started again takes the session up.
func TestClusterNodeRenamedOnDataDirRefuses(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	c := e2etest.Start(t, keepingNodeOptions(dsn, "c"))
	counter := filepath.Join(t.TempDir(), "counter")
	id := c.CreateSession(t, map[string]any{"environment_id": "host-c", "command": []string{"/bin/sh", "-c",
		`i=0; while :; do i=$((i+1)); echo $i > ` + counter + `; sleep 0.05; done`}})
	waitStored(t, dsn, id, core.StatusActive)
	counterRuns(t, counter, "before c stops")
	if err := c.Stop(t, 30*time.Second); err != nil {
		t.Fatalf("stop c: %v\n%s", err, c.Stderr())
	}

	renamed := c.Options()
	renamed.Args = append(renamed.Args, "--node-name", "e", "--advertise-url", "http://e.cluster.test:7420") // the later flags win
	out, err := e2etest.RunRefused(t, renamed, 60*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("node e on c's data directory: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{
		"refusing to start: the plugins on the data directory " + c.DataDir + " kept 1 session of a previous server",
		"the database records them as node c's, not node e's", "--node-name", "Start node c on this data directory",
		"--hang-up-unknown-sessions",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, out)
		}
	}
	counterRuns(t, counter, "after node e's refused start")

	c2 := c.Restart(t)
	waitLive(t, c2, id)
	counterRuns(t, counter, "once c took the session up again")
}
