package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestKillDuringCreates: the server is killed in the middle of
// concurrent creates. The next server has every session it keeps live and
// serving (input reaches it, its output comes: no stalled reader), and the
// plugin runs no process beyond them.
func TestKillDuringCreates(t *testing.T) {
	srv := startKeeping(t, e2etest.Options{})
	plugins := children(srv.Pid(t))
	for round := range 6 {
		var wg sync.WaitGroup
		var kill sync.Once
		for i := range 8 {
			id := fmt.Sprintf("c%d-%d", round, i)
			wg.Go(func() {
				body := fmt.Sprintf(`{"id":%q,"environment_id":"host","command":["/bin/sh","-c","while read l; do echo got-$l; done"]}`, id)
				resp, err := http.Post(srv.URL+"/api/v1/sessions", "application/json", strings.NewReader(body))
				if err != nil {
					return
				}
				resp.Body.Close()
				if i == 3 {
					kill.Do(func() { srv.Signal(t, syscall.SIGKILL) })
				}
			})
		}
		time.Sleep(time.Duration(5+10*round) * time.Millisecond)
		kill.Do(func() { srv.Signal(t, syscall.SIGKILL) })
		wg.Wait()
		_ = srv.Wait(t, 30*time.Second)
		srv = srv.Restart(t)
		_, list := srv.Request(t, "GET", "/api/v1/sessions?limit=100", nil)
		live := 0
		for _, it := range list["sessions"].([]any) {
			rec := it.(map[string]any)
			id := rec["id"].(string)
			if st := rec["status"]; st != "ACTIVE" && st != "IDLE" {
				continue
			}
			live++
			tm := srv.Attach(t, id)
			tm.Send("ping\r")
			if err := tm.Until(func() bool { return strings.Contains(string(tm.Out), "got-ping") }); err != nil {
				t.Errorf("round %d: %s taken up but not serving: %v", round, id, err)
			}
			tm.Conn.Close()
		}
		time.Sleep(300 * time.Millisecond)
		kids := 0
		for _, p := range plugins {
			kids += len(children(p))
		}
		t.Logf("round %d: %d live sessions, %d session processes", round, live, kids)
		if kids != live {
			t.Errorf("round %d: %d live sessions, %d session processes in the plugin", round, live, kids)
		}
	}
}
