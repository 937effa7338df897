package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// testToken is the token of the servers that have one.
const testToken = "browsertest-token-6c1f0e2a9d"

// TestToken: with a token server the page asks for the token, refuses a
// wrong one (and lists nothing), and with the right one lists the
// sessions and attaches; the token never reaches the server's log.
func TestToken(t *testing.T) {
	t.Parallel()
	// The server logs nothing of a request at any level today; at debug,
	// the most it logs, the check below guards against one that would.
	srv := startServer(t, e2etest.Options{LogLevel: "debug", Args: []string{"--token", testToken}})
	id := shellSession(t, srv)
	p := newTab(t, "token")
	sockets := watchWebSockets(p)
	// The page asks the server before it has a token, then with a wrong
	// one: each answer is a 401, which Chromium logs.
	p.expect(`^log network error: Failed to load resource: the server responded with a status of 401`)
	p.navigate(pageURL(srv, "/", true))
	p.waitFor("the token dialog", `document.querySelector("#token-dialog").open`, `document.body.innerText.slice(0, 300)`)
	// A bearer token, kept for the tab: not a login for the browser's
	// password manager (no username beside it, autocomplete off).
	if got := eval[string](p, `Array.from(document.querySelectorAll("#token-form input"), (e) => e.id + ":" + e.autocomplete).join(" ")`); got != "token-input:off" {
		t.Errorf("the token form's inputs are %q, want token-input:off alone", got)
	}

	p.do("submit a wrong token",
		chromedp.SetValue(chromedp.CSS("#token-input"), "wrong-"+testToken),
		chromedp.Click(chromedp.CSS("#token-submit")))
	p.waitFor("the wrong-token message", `(() => { const e = document.querySelector("#token-error"); return e.checkVisibility() && e.textContent.trim() !== ""; })()`,
		`[document.querySelector("#token-error").textContent, document.querySelector("#token-dialog").open]`)
	if n := eval[int](p, `document.querySelectorAll("#sessions tr[data-session-id]").length`); n != 0 {
		t.Errorf("the page lists %d sessions with a wrong token, want none", n)
	}
	if !eval[bool](p, `document.querySelector("#token-dialog").open`) {
		t.Error("the token dialog closed after a wrong token")
	}

	// A token a browser cannot send in a header (an em dash from smart
	// punctuation) is refused at entry with why: sent, fetch threw, which
	// read as "cannot reach the server", and the dialog never came back.
	p.do("submit a token beyond ASCII",
		chromedp.SetValue(chromedp.CSS("#token-input"), "wrong\u2014"+testToken),
		chromedp.Click(chromedp.CSS("#token-submit")))
	p.waitFor("the beyond-ASCII message", `document.querySelector("#token-dialog").open && /beyond ASCII/.test(document.querySelector("#token-error").textContent)`,
		`[document.querySelector("#token-error").textContent, document.querySelector("#token-dialog").open]`)

	p.do("submit the right token",
		chromedp.SetValue(chromedp.CSS("#token-input"), testToken),
		chromedp.Click(chromedp.CSS("#token-submit")))
	p.waitReady()
	p.waitFor("the token dialog to close", `!document.querySelector("#token-dialog").open`, "")
	row := fmt.Sprintf(`document.querySelector('#sessions tr[data-session-id=%s]')`, jsString(id))
	p.waitFor("the session's row", row, `document.querySelector("#sessions").innerText`)
	if got := eval[string](p, `sessionStorage.getItem("ptyhost.token") || ""`); got != testToken {
		t.Errorf("sessionStorage ptyhost.token is %q, want the token", got)
	}

	p.do("click attach", chromedp.Click(chromedp.CSS(`#sessions tr[data-session-id="`+id+`"] button.attach`)))
	p.waitAttached(id)
	p.typeLine("echo tok-$((40+2))")
	p.waitLine("tok-42")

	if log := srv.Stderr(); strings.Contains(log, testToken) {
		t.Errorf("the server's log holds the token:\n%s", log)
	}
	// The page's WebSockets (the events stream, the attach) carry the
	// token as a subprotocol, never in their URLs, which proxies log.
	seen := sockets.list()
	if len(seen) < 2 {
		t.Errorf("the page opened %d WebSockets, want the events stream and the attach: %q", len(seen), seen)
	}
	for _, ws := range seen {
		if strings.Contains(ws.url, "access_token") || strings.Contains(ws.url, testToken) {
			t.Errorf("a WebSocket URL carries the token: %s", ws.url)
		}
		if !strings.Contains(ws.protocols, wsproto.TokenSubprotocol(testToken)) {
			t.Errorf("the WebSocket to %s offered %q, not the token subprotocol", ws.url, ws.protocols)
		}
	}
}

// webSocketsSeen records the WebSockets a tab opens: URL and the
// subprotocols its handshake offered.
type webSocketsSeen struct {
	mu      sync.Mutex
	sockets map[network.RequestID]*seenSocket
	order   []network.RequestID
}

type seenSocket struct{ url, protocols string }

// watchWebSockets starts recording p's WebSockets (chromedp enables the
// network events on every tab).
func watchWebSockets(p *tab) *webSocketsSeen {
	w := &webSocketsSeen{sockets: map[network.RequestID]*seenSocket{}}
	p.listen(func(ev any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventWebSocketCreated:
			w.sockets[ev.RequestID] = &seenSocket{url: ev.URL}
			w.order = append(w.order, ev.RequestID)
		case *network.EventWebSocketWillSendHandshakeRequest:
			if s := w.sockets[ev.RequestID]; s != nil && ev.Request != nil {
				for k, v := range ev.Request.Headers {
					if strings.EqualFold(k, "Sec-WebSocket-Protocol") {
						s.protocols = fmt.Sprint(v)
					}
				}
			}
		}
	})
	return w
}

// list returns the WebSockets seen so far, in order.
func (w *webSocketsSeen) list() []seenSocket {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []seenSocket
	for _, id := range w.order {
		out = append(out, *w.sockets[id])
	}
	return out
}

// otherOriginPage is a page of another origin that tries to use the
// server with a stolen token: attach over a WebSocket and create a
// session with a no-cors POST (the browser sends it, answer unread).
// Neither is stopped by the browser's CORS rules, only by the server's
// Origin and Content-Type checks. (Reading the API is stopped by the
// browser itself, whatever the server answers, so a test of it here
// could not fail; core/api's Guard tests check the server's 403.) It puts
// what happened in window.result.
const otherOriginPage = `<!doctype html><title>another origin</title><script>
const base = %s, api = base + "/api/v1/sessions", token = %s;
const r = window.result = {ws: "pending", opened: false, messages: 0, post: "pending"};
const ws = new WebSocket(%s, "ptyhost.v1");
ws.binaryType = "arraybuffer";
ws.onopen = () => { r.opened = true; ws.send(new TextEncoder().encode("echo pwned\r")); };
ws.onmessage = () => { r.messages++; };
ws.onclose = (e) => { r.ws = "closed " + e.code; };
const settle = (key) => [(resp) => { r[key] = "answered " + resp.status + " " + resp.type; }, (err) => { r[key] = "failed: " + err; }];
fetch(api + "?access_token=" + token, {method: "POST", mode: "no-cors", headers: {"Content-Type": "text/plain"},
  body: JSON.stringify({environment_id: "host", command: ["/bin/sh", "-c", "echo pwned; sleep 60"]})}).then(...settle("post"));
</script>`

// TestOtherOriginCannotAttach: a page served from another origin, with
// the token, can neither attach to a session nor create one.
func TestOtherOriginCannotAttach(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{Args: []string{"--token", testToken}})
	id := shellSession(t, srv)
	attachURL := srv.AttachURL(id) + "?access_token=" + testToken
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, otherOriginPage, jsString(srv.URL), jsString(testToken), jsString(attachURL))
	}))
	t.Cleanup(other.Close)

	p := newTab(t, "other origin")
	// The refusals are the point: Chromium logs the failed WebSocket and
	// the answers without CORS headers.
	p.expect(`WebSocket connection to '[^']*' failed`, `blocked by CORS policy`, `Failed to load resource`)
	p.navigate(other.URL + "/")
	p.waitFor("the other origin's attempts to end",
		`window.result && !Object.values(window.result).includes("pending")`, `JSON.stringify(window.result)`)
	res := eval[map[string]any](p, `window.result`)
	if res["opened"] != false || res["messages"] != float64(0) {
		t.Errorf("another origin's WebSocket attached: %v", res)
	}
	if ids := sessionIDs(t, srv); !slices.Equal(ids, []string{id}) {
		t.Errorf("sessions %v after another origin's POST, want only %s", ids, id)
	}
	if rec := srv.Session(t, id); number(rec, "active_connections") != 0 {
		t.Errorf("the session has a client after another origin tried to attach: %v", rec)
	}
	t.Logf("another origin: %v", res)

	// The control: the same WebSocket from the server's own page attaches,
	// so what refused the other origin was its Origin.
	own := newTab(t, "own origin")
	own.expect(`^log network error: Failed to load resource: the server responded with a status of 401`) // the page, before its token
	own.navigate(pageURL(srv, "/", true))
	got := eval[string](own, `new Promise((resolve) => {
		const ws = new WebSocket(`+jsString(attachURL)+`, "ptyhost.v1");
		ws.onopen = () => { ws.close(); resolve("open"); };
		ws.onclose = (e) => resolve("closed " + e.code);
	})`)
	if got != "open" {
		t.Errorf("the server's own page could not attach with the token either (%s): the test shows nothing about origins", got)
	}
}

// TestNoTestHookByDefault: the page puts its test hook, window.ptyhost,
// on window only when loaded with ?testhook=1, as the tests load it;
// loaded as a user loads it, listing the sessions or attached to one, it
// has none.
func TestNoTestHookByDefault(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	id := shellSession(t, srv)
	p := newTab(t, "no-hook")
	p.navigate(srv.URL + "/#/")
	row := fmt.Sprintf(`document.querySelector('#sessions tr[data-session-id=%s]')`, jsString(id))
	p.waitFor("the session's row in the list", row, `document.body.innerText.slice(0, 300)`)
	if eval[bool](p, `"ptyhost" in window`) {
		t.Error("the list page has window.ptyhost without ?testhook=1")
	}

	eval[bool](p, fmt.Sprintf(`(location.hash = "#/s/" + %s, true)`, jsString(id)))
	p.waitFor("the page attached", fmt.Sprintf(`document.querySelector("#term-title").textContent === %s &&
		document.querySelector("#conn-state").dataset.state === "open"`, jsString(id)),
		`[location.hash, document.querySelector("#conn-state").dataset.state]`)
	if eval[bool](p, `"ptyhost" in window`) {
		t.Error("the attached page has window.ptyhost without ?testhook=1")
	}
}
