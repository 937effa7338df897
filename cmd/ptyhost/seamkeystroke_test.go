package main

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestKeystrokeThenKill: a keystroke sent right before the server is
// killed reaches the program at most once (once, if the server took it),
// and input typed to the next server after it.
func TestKeystrokeThenKill(t *testing.T) {
	srv := startKeeping(t, e2etest.Options{})
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c",
		`stty -echo; while read l; do echo "got-$l"; done`}})
	tm := srv.Attach(t, id)
	delivered := 0
	for i := range 8 {
		tm.Send(fmt.Sprintf("k%d\r", i))
		time.Sleep(time.Duration(i) * time.Millisecond)
		if i%2 == 0 {
			srv.Kill(t)
		} else {
			_ = srv.Stop(t, 20*time.Second)
		}
		srv = srv.Restart(t)
		tm = srv.Attach(t, id)
		sentinel := fmt.Sprintf("got-z%d\r\n", i)
		tm.Send(fmt.Sprintf("z%d\r", i))
		tm.WaitOutput(sentinel)
		n := bytes.Count(tm.Out, fmt.Appendf(nil, "got-k%d\r\n", i))
		before := bytes.Index(tm.Out, fmt.Appendf(nil, "got-k%d\r\n", i)) < bytes.Index(tm.Out, []byte(sentinel))
		t.Logf("round %d: keystroke delivered %d times (before the next: %v)", i, n, before)
		if n > 1 || (n == 1 && !before) {
			t.Errorf("round %d: keystroke delivered %d times, before the next server's input: %v", i, n, before)
		}
		delivered += n
	}
	if delivered == 0 {
		t.Error("no keystroke sent before a kill was ever delivered")
	}
}
