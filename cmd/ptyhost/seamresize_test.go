package main

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestResizeThenKill: a client resizes, and the server is killed
// right after. The next server's idea of the terminal's size (the hello's,
// the record's) must be the terminal's own: else a client draws at one
// size a program that draws at another, until someone resizes.
func TestResizeThenKill(t *testing.T) {
	for _, c := range []struct {
		kill  bool
		pause time.Duration
	}{{false, 20 * time.Millisecond}, {true, time.Second}, {true, 20 * time.Millisecond}, {true, 2 * time.Millisecond}, {true, 0}} {
		t.Run(fmt.Sprintf("kill=%v,pause=%v", c.kill, c.pause), func(t *testing.T) { seamResize(t, c.kill, c.pause) })
	}
}

func seamResize(t *testing.T, kill bool, pause time.Duration) {
	srv := startKeeping(t, e2etest.Options{})
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c",
		`while read l; do echo "size-$l:$(stty size)"; done`}, "cols": 80, "rows": 24})
	tm := srv.Attach(t, id)
	tm.Send("x\r")
	tm.WaitOutput("size-x:24 80")
	for i := range 5 {
		cols, rows := 100+i, 30+i
		tm.Resize(cols, rows)
		time.Sleep(pause) // the server applied it
		if kill {
			srv.Kill(t)
			srv = srv.Restart(t)
			tm = srv.Attach(t, id)
		}
		h := tm.Hello()
		if !kill {
			h.Cols, h.Rows = cols, rows
		}
		tm.Out = nil
		tm.Send(fmt.Sprintf("r%d\r", i))
		re := regexp.MustCompile(fmt.Sprintf(`size-r%d:(\d+) (\d+)`, i))
		if err := tm.Until(func() bool { return re.Match(tm.Out) }); err != nil {
			t.Fatal(err)
		}
		m := re.FindSubmatch(tm.Out)
		actual := fmt.Sprintf("%sx%s", m[2], m[1])
		t.Logf("round %d: resized to %dx%d; after the restart the hello says %dx%d, the record %vx%v, the terminal %s",
			i, cols, rows, h.Cols, h.Rows, srv.Session(t, id)["cols"], srv.Session(t, id)["rows"], actual)
		if fmt.Sprintf("%dx%d", h.Cols, h.Rows) != actual {
			t.Errorf("round %d: the next server says %dx%d, the terminal is %s", i, h.Cols, h.Rows, actual)
		}
		tm.Out = nil
	}
}
