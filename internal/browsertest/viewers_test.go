package browsertest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// A viewer's page whose place a writer takes (--max-clients 1) says why
// while it waits for a place — also after the server has refused it
// again (a 409, which a browser sees only as 1006), where it used to say
// "connection lost" — and attaches again once the writer has left.
func TestDisplacedViewerPage(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{Args: []string{"--max-clients", "1"}})
	id := shellSession(t, srv)
	p := newTab(t, "viewer")
	// The refused attempts while the session is full, and the page's
	// asking the endpoint why.
	p.expect(`log network error: WebSocket connection to .* failed: Error during WebSocket handshake: Unexpected response code: 409`,
		`log network error: Failed to load resource: the server responded with a status of 409`)
	sockets := watchWebSockets(p)
	p.navigate(pageURL(srv, "/s/"+id+"?mode=read", true))
	p.waitAttached(id)
	attached := len(sockets.list())

	w := srv.Attach(t, id)
	const why = wsproto.CloseReasonDisplaced
	state := func() string {
		return eval[string](p, `(() => { const el = document.querySelector("#conn-state"); return el.dataset.state + "|" + el.title; })()`)
	}
	// A socket tried after the displacement was refused: the page is
	// waiting again, and still says why.
	e2etest.Eventually(t, 30*time.Second, "the page, refused again, to say why it has no place", func() bool {
		return len(sockets.list()) > attached && state() == "reconnecting|"+why
	}, func() string {
		return fmt.Sprintf("%d sockets (%d when attached); state %q", len(sockets.list()), attached, state())
	})

	w.Conn.CloseWith(wsproto.CloseNormal, "")
	p.waitAttached(id)
}

// termSize is the page's terminal's size, as "COLSxROWS".
const termSize = `window.ptyhost.term.cols + "x" + window.ptyhost.term.rows`

// sizeNote is the text of the bar's note that the session is larger than
// the page draws, or "" while it is not shown.
const sizeNote = `(() => { const b = document.querySelector("#size-badge"); return b && b.checkVisibility() ? b.textContent : ""; })()`

// A viewer takes the session's size, which a writer may make as large as
// 1000×1000; a terminal that size froze the tab for seconds (xterm.js in
// software WebGL). A viewer's terminal is cut to 500×200, and the bar
// says the session's size; a viewer of a session of a window's size gets
// that size and no note, also when a writer changes it.
func TestViewerOfHugeSession(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	huge := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}, "cols": 1000, "rows": 1000})
	normal := srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}, "cols": 100, "rows": 30})

	p := newTab(t, "huge-viewer")
	// The default renderer, WebGL where Chromium has it, as a user's page.
	p.navigate(pageURL(srv, "/s/"+huge+"?mode=read", false))
	p.waitAttached(huge) // the hello has sized the terminal
	if got := eval[string](p, termSize); got != "500x200" {
		t.Errorf("a viewer of a 1000×1000 session has a %s terminal, want 500x200", got)
	}
	if got := eval[string](p, sizeNote); !strings.Contains(got, "1000×1000") {
		t.Errorf("the bar's size note is %q, want one saying the session is 1000×1000", got)
	}

	v := newTab(t, "normal-viewer")
	v.navigate(pageURL(srv, "/s/"+normal+"?mode=read", true))
	v.waitAttached(normal)
	if got := eval[string](v, termSize); got != "100x30" {
		t.Errorf("a viewer of a 100×30 session has a %s terminal, want 100x30", got)
	}
	if got := eval[string](v, sizeNote); got != "" {
		t.Errorf("a viewer of a 100×30 session notes %q", got)
	}
	w := srv.Attach(t, normal)
	w.Resize(1000, 1000)
	v.waitFor("the viewer's terminal cut to 500×200, noted", termSize+` === "500x200" && `+sizeNote+`.includes("1000×1000")`,
		`[`+termSize+`, `+sizeNote+`]`)
	w.Resize(120, 40)
	v.waitFor("the viewer's terminal to take 120×40, without a note", termSize+` === "120x40" && `+sizeNote+` === ""`,
		`[`+termSize+`, `+sizeNote+`]`)
}
