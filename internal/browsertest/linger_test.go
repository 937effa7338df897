package browsertest

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestReconnectToExitedSession: a page whose connection drops while the
// program prints its last words and exits, with the server up all along,
// shows those words when it reconnects, then the exit: the session
// lingers in the server's memory, and its attach gives the bytes from the
// page's offset and the exit (docs/protocol.md). The page read the
// session's record first, found it ended and showed the exit alone.
func TestReconnectToExitedSession(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	id := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh", "-c", "echo started; read x; echo last-$((6*7)); exit 4"}})
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	front := e2etest.NewProxy(t, u.Host)
	p := newTab(t, "reconnect-exited")
	// While the proxy is stopped, the page's reconnects fail, and
	// Chromium logs each.
	p.expect(`^log network error: WebSocket connection to '[^']*' failed`, `^log network error: Failed to load resource`)
	p.navigate("http://" + front.Addr() + "/?" + testHook + "&renderer=dom#/s/" + id)
	p.waitAttached(id)
	p.waitLine("started")

	front.Stop()
	p.waitFor("the page to notice the drop", `document.querySelector("#conn-state").dataset.state === "reconnecting"`,
		`document.querySelector("#conn-state").dataset.state`)
	// Another client lets the program go on, to its end, while the page
	// cannot reach the server.
	srv.Attach(t, id).Send("\r")
	eventually(t, "the session to end", func() bool {
		return srv.Session(t, id)["status"] == "TERMINATED"
	}, func() string { return fmt.Sprint(srv.Session(t, id)) })
	front.Start()

	p.waitFor("the exit banner", `(() => { const b = document.querySelector("#exit-banner"); return b.checkVisibility() && /exited with code 4\b/.test(b.textContent); })()`,
		`[document.querySelector("#exit-banner").textContent, document.querySelector("#conn-state").dataset.state]`)
	p.waitLine("last-42")
	if got := eval[float64](p, `window.ptyhost.resets`); got != 1 {
		t.Errorf("the page started its terminal afresh %v times, want once (the first hello): it did not resume at its offset", got)
	}
}
