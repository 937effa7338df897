package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestPasteSurvivesKill: a paste the server took while the program
// was not reading (its terminal full: direct input gave up and sent the
// rest as frames on the byte channel) reaches the program whole after the
// server is killed, though the program printed meanwhile, and though the
// next server takes the session up before the program reads: the plugin
// applies what the dead server wrote first, then the new server's input.
func TestPasteSurvivesKill(t *testing.T) {
	for _, kill := range []bool{false, true} {
		t.Run(fmt.Sprint("kill=", kill), func(t *testing.T) { pasteThenKill(t, kill) })
	}
}

func pasteThenKill(t *testing.T, kill bool) {
	srv := startKeeping(t, e2etest.Options{})
	// The program reads once the file named go exists.
	start := filepath.Join(t.TempDir(), "go")
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c",
		`stty raw -echo; (while :; do echo tick; sleep 0.1; done) & echo READY; while [ ! -e "$0" ]; do sleep 0.05; done; head -c 200000 >/dev/null; echo DONE; sleep 3600`,
		start}})
	tm := srv.Attach(t, id)
	tm.WaitOutput("READY")
	chunk := strings.Repeat("a", 50000)
	for range 4 {
		tm.Send(chunk)
	}
	time.Sleep(500 * time.Millisecond) // the server wrote the paste
	if kill {
		srv.Kill(t)
		srv = srv.Restart(t)
		tm = srv.Attach(t, id)
	}
	if err := os.WriteFile(start, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tm.Until(func() bool { return bytes.Contains(tm.Out, []byte("DONE")) }); err != nil {
		t.Fatalf("the program never read the whole paste: %v", err)
	}
}
