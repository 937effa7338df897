package browsertest

import (
	"fmt"
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
	// The refused attempts while the session is full.
	p.expect(`log network error: WebSocket connection to .* failed: Error during WebSocket handshake: Unexpected response code: 409`)
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
