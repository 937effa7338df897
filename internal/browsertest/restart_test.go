package browsertest

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// tickScript prints tick1, tick2, … one line every 100 ms, forever.
const tickScript = `i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.1; done`

var tickLine = regexp.MustCompile(`^tick(\d+)$`)

// ticks returns the numbers of the tick lines of a terminal's text, in
// order.
func ticks(text string) []int {
	var out []int
	for _, l := range strings.Split(text, "\n") {
		if m := tickLine.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}

// waitTick waits until the terminal shows tick n or a later one, and
// returns the last tick shown.
func (p *tab) waitTick(n int) int {
	p.t.Helper()
	var last int
	p.waitText(fmt.Sprintf("tick%d in the terminal", n), func(s string) bool {
		if ts := ticks(s); len(ts) > 0 {
			last = ts[len(ts)-1]
		}
		return last >= n
	})
	return last
}

// TestServerRestart: a server stopped with its sessions left running and
// a new one started on the same address and data directory: the page
// shows that it reconnects, resumes where it was, and the terminal has
// every line the program printed, once each, in order.
func TestServerRestart(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	srv := startServer(t, e2etest.Options{
		KeepSessions: true,
		LogLevel:     "info", // what the servers did around the restart, on a failure
		// Longer than a restart takes on a loaded machine.
		Args: append(listenArgs(port), "--orphan-timeout", "1m"),
	})
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", tickScript}})
	p := newTab(t, "restart")
	// While no server answers, or the new one is taking its sessions up,
	// the page's attempts to reconnect fail, and Chromium logs each.
	p.expect(fmt.Sprintf(`^log network error: WebSocket connection to 'ws://127\.0\.0\.1:%d/[^']*' failed`, port),
		`^log network error: Failed to load resource: net::ERR_CONNECTION_REFUSED`,
		`^log network error: Failed to load resource: the server responded with a status of 503`)
	p.attach(srv, id)
	p.waitTick(10)
	// Every state the connection indicator goes through from now on.
	eval[bool](p, `(() => { const el = document.querySelector("#conn-state"); window.__states = [];
		new MutationObserver(() => window.__states.push(el.dataset.state)).observe(el, {attributes: true, attributeFilter: ["data-state"]});
		return true; })()`)

	srv.Signal(t, syscall.SIGTERM)
	if err := srv.Wait(t, stopTimeout); err != nil {
		t.Fatalf("the server's exit on SIGTERM: %v", err)
	}
	p.waitFor("the page to show it reconnects", `window.__states.includes("reconnecting")`, `window.__states`)
	before := ticks(p.text())
	// What the page resumes at, and how often it has started its
	// terminal afresh (once, at the first hello).
	offset := eval[float64](p, `window.ptyhost.offset`)
	resets := eval[float64](p, `window.ptyhost.resets`)
	if len(before) < 10 {
		t.Fatalf("the terminal lost its ticks when the server stopped:\n%s", p.text())
	}

	srv = srv.Restart(t)
	p.waitAttached(id)
	eventually(t, "the new server to count the page's client", func() bool {
		return number(srv.Session(t, id), "active_connections") == 1
	}, func() string { return fmt.Sprint(srv.Session(t, id)) })
	last := p.waitTick(before[len(before)-1] + 20) // live again
	// The resume was exact: no fresh start and replay, which would show
	// the ticks in order too.
	if got := eval[float64](p, `window.ptyhost.resets`); got != resets {
		t.Errorf("the page started its terminal afresh %v times across the restart (offset %v before the stop): it did not resume at its offset", got-resets, offset)
	}
	if got := eval[float64](p, `window.ptyhost.offset`); got <= offset {
		t.Errorf("offset %v after the restart, %v before: no new output counted", got, offset)
	}
	states := eval[[]string](p, `window.__states`)
	if i := slices.Index(states, "reconnecting"); i < 0 || !slices.Contains(states[i:], "open") {
		t.Errorf("#conn-state went through %q, want reconnecting then open", states)
	}

	text := p.text()
	got := ticks(text)
	if len(got) == 0 || got[0] != 1 {
		t.Fatalf("the terminal's first tick is not tick1 (the buffer holds them all):\n%s", text)
	}
	for i, n := range got {
		if n != i+1 {
			t.Fatalf("tick line %d is tick%d, want tick%d: the page lost or repeated output across the restart; ticks %v",
				i+1, n, i+1, got[max(0, i-5):min(len(got), i+5)])
		}
	}
	t.Logf("ticks 1 to %d in order, %d before the stop", last, len(before))
}
