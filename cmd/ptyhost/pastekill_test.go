package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestPasteSurvivesKill: a paste the server took while the program
// was not reading (its terminal full: direct input gave up and sent the
// rest as frames on the byte channel) reaches the program whole after the
// server is killed, though the program printed meanwhile.
func TestPasteSurvivesKill(t *testing.T) {
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprint("kill=", kill), func(t *testing.T) { pasteThenKill(t, kill) })
	}
}

func pasteThenKill(t *testing.T, kill bool) {
	srv := startKeeping(t, e2etest.Options{})
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c",
		`stty raw -echo; (while :; do echo tick; sleep 0.1; done) & echo READY; sleep 3; head -c 100000 >/dev/null; echo DONE; sleep 3600`}})
	tm := srv.Attach(t, id)
	tm.WaitOutput("READY")
	chunk := strings.Repeat("a", 50000)
	tm.Send(chunk)
	tm.Send(chunk)
	time.Sleep(500 * time.Millisecond) // the server wrote the paste
	if kill {
		srv.Kill(t)
		// The program reads the paste (after its sleep 3) before the next
		// server takes the session up: the plugin applies what the dead
		// server wrote only until then (a takeover drops the rest, which
		// an immediate restart showed).
		time.Sleep(4 * time.Second)
		srv = srv.Restart(t)
		tm = srv.Attach(t, id)
	}
	if err := tm.Until(func() bool { return bytes.Contains(tm.Out, []byte("DONE")) }); err != nil {
		t.Fatalf("the program never read the whole paste: %v", err)
	}
}
