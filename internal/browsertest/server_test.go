package browsertest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// startServer starts a ptyhost server with the HOST plugin running, its
// configuration from its flags alone (a PTYHOST_TOKEN or PTYHOST_WEB in
// the developer's environment would change what the page does). It
// checks for Chromium first: without one the test skips (or fails) before
// it starts anything.
func startServer(t testing.TB, o e2etest.Options) *e2etest.Server {
	t.Helper()
	sharedBrowser(t)
	o.WaitPlugins, o.DropPTYHOSTEnv = true, true
	return e2etest.Start(t, o)
}

// testHook is the page's query that sets its test hook, window.ptyhost,
// which the page leaves out otherwise.
const testHook = "testhook=1"

// pageURL is the page's address on srv, with its test hook, showing route
// (such as "/" or "/s/ID"); dom forces xterm's DOM renderer, for tests
// that read the DOM.
func pageURL(srv *e2etest.Server, route string, dom bool) string {
	u := srv.URL + "/?" + testHook
	if dom {
		u += "&renderer=dom"
	}
	return u + "#" + route
}

// openPage opens the page at route in a new tab and waits until it has
// loaded its list (window.ptyhost.ready).
func openPage(t testing.TB, srv *e2etest.Server, name, route string) *tab {
	t.Helper()
	p := newTab(t, name)
	p.navigate(pageURL(srv, route, true))
	p.waitReady()
	return p
}

// waitReady waits until the page has loaded its list.
func (p *tab) waitReady() {
	p.t.Helper()
	p.waitFor("the page to load its list (window.ptyhost.ready)", `window.ptyhost && window.ptyhost.ready === true`, `document.body && document.body.innerText.slice(0, 500)`)
}

// waitAttached waits until the page shows session id attached: its route,
// the terminal view's title, and the connection indicator open.
func (p *tab) waitAttached(id string) {
	p.t.Helper()
	p.waitFor("attached to "+id, fmt.Sprintf(`window.ptyhost && window.ptyhost.sessionId === %s &&
		document.querySelector("#conn-state") && document.querySelector("#conn-state").dataset.state === "open"`, jsString(id)),
		`[location.hash, window.ptyhost && window.ptyhost.sessionId, document.querySelector("#conn-state") && document.querySelector("#conn-state").dataset.state]`)
}

// connState is the connection indicator's data-state.
func (p *tab) connState() string {
	p.t.Helper()
	return eval[string](p, `(document.querySelector("#conn-state") || {dataset: {}}).dataset.state || ""`)
}

// attachedRoute opens session id in tab p and waits until it is attached.
func (p *tab) attach(srv *e2etest.Server, id string) {
	p.t.Helper()
	p.navigate(pageURL(srv, "/s/"+id, true))
	p.waitAttached(id)
}

// shellSession creates a session running /bin/sh over the REST API.
func shellSession(t testing.TB, srv *e2etest.Server) string {
	t.Helper()
	return srv.CreateSession(t, map[string]any{"command": []string{"/bin/sh"}})
}

// sessionIDs lists the server's sessions' ids.
func sessionIDs(t testing.TB, srv *e2etest.Server) []string {
	t.Helper()
	code, out := srv.Request(t, "GET", "/api/v1/sessions", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /api/v1/sessions: %d %v", code, out)
	}
	list, _ := out["sessions"].([]any)
	var ids []string
	for _, s := range list {
		if s, ok := s.(map[string]any); ok {
			if id, ok := s["id"].(string); ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// number reads a JSON number field of a record as an int.
func number(rec map[string]any, key string) int {
	f, _ := rec[key].(float64)
	return int(f)
}

// routeID returns the session id of a #/s/ID route, or "".
func routeID(hash string) string {
	if m := sessionRoute.FindStringSubmatch(hash); m != nil {
		return m[1]
	}
	return ""
}

var sessionRoute = regexp.MustCompile(`^#/s/([^?/]+)`)

// freePort returns a loopback TCP port nothing listens on now, for a
// server that must come back on the same address after a restart.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

// listenArgs are the flags that put a server on port.
func listenArgs(port int) []string {
	return []string{"--listen", "127.0.0.1:" + strconv.Itoa(port)}
}

// repoRoot finds the module's root from the test's working directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's working directory")
		}
		dir = parent
	}
}

// eventually is e2etest.Eventually with the package's bound.
func eventually(t testing.TB, what string, cond func() bool, detail func() string) {
	t.Helper()
	e2etest.Eventually(t, waitTimeout, what, cond, detail)
}

// stopTimeout bounds a server's exit on SIGTERM.
const stopTimeout = 30 * time.Second
