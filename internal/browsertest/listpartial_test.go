package browsertest

import (
	"testing"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// While the server's database is unavailable, its list holds only the
// sessions in its memory and says so ("partial"): the page shows why,
// and clears it once a whole list comes back. The outage is the server's
// answer rewritten in the page (a real one is tested against the API).
func TestListShowsPartialList(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	live := shellSession(t, srv)
	p := openPage(t, srv, "list", "/")
	row := `document.querySelector('#sessions tr[data-session-id=` + jsString(live) + `]')`
	p.waitFor("the session's row", row+` !== null`, `document.querySelector("#sessions tbody").innerHTML`)

	eval[bool](p, `(() => {
		window.__fetch = window.fetch;
		window.fetch = async (path, init) => {
			const res = await window.__fetch(path, init);
			if (!String(path).startsWith('api/v1/sessions?')) return res;
			const body = await res.json();
			body.partial = true;
			body.partial_reason = 'the database is unavailable: test outage';
			return new Response(JSON.stringify(body), { status: 200, headers: { 'Content-Type': 'application/json' } });
		};
		return true;
	})()`)
	errText := `document.getElementById("list-error").textContent`
	p.waitFor("the page to say the list is partial", errText+`.includes("in memory") && `+errText+`.includes("test outage")`, errText)
	if !eval[bool](p, row+` !== null`) {
		t.Error("the session's row went with the partial list")
	}
	eval[bool](p, `(window.fetch = window.__fetch, true)`)
	p.waitFor("the note to clear with a whole list", errText+` === ""`, errText)
}
