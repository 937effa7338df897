package browsertest

import (
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestFullSessionPageSaysWhy: a page attaching to a session that has as
// many clients as the server allows says so while it waits for a place,
// and attaches once one is free. The browser sees the upgrade's 409 only
// as a failed WebSocket, and the page said "connection lost".
func TestFullSessionPageSaysWhy(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{Args: []string{"--max-clients", "1"}})
	id := shellSession(t, srv)
	first := newTab(t, "first")
	first.attach(srv, id)

	p := newTab(t, "second")
	// The refused upgrades, and the page's asking why.
	p.expect(`Unexpected response code: 409`, `status of 409`)
	p.navigate(pageURL(srv, "/s/"+id, true))
	title := `(document.querySelector("#conn-state").dataset.state + "|" + document.querySelector("#conn-state").title)`
	p.waitFor("the page to say the session is full", title+`.includes("too many clients")`, title)
	if state := p.connState(); state == "closed" {
		t.Fatalf("the page gave up on a full session (%s), want it trying again", eval[string](p, title))
	}

	first.navigate(pageURL(srv, "/", true)) // the first page leaves
	p.waitAttached(id)
	p.typeLine("echo place-$((5*5))")
	p.waitLine("place-25")
	if got := eval[string](p, title); strings.Contains(got, "too many") {
		t.Errorf("#conn-state is %q once attached", got)
	}
}
