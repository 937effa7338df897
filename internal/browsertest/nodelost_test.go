package browsertest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// TestNodeLostRecordIsNotTheEnd: a session recorded ERROR node_lost while
// its node is away (docs/protocol.md, "Between nodes") is not over: its
// node may come back with it. The page keeps trying, as the server's 503
// asks, and attaches once the record says the session runs again; a
// node_lost record whose node is back is final, and the page shows the
// end.
//
// A proxy in front of one real server plays the cluster: while lost is
// set it answers the session's record as a cluster's node a would for a
// session of a lost node b, and the node list with b unhealthy.
func TestNodeLostRecordIsNotTheEnd(t *testing.T) {
	t.Parallel()
	srv := startServer(t, e2etest.Options{})
	id := shellSession(t, srv)
	const finalID = "ended-on-c"

	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var lost atomic.Bool
	var lostReads atomic.Int32
	lost.Store(true)
	record := func(id, node string) map[string]any {
		return map[string]any{"id": id, "environment_id": "host", "node": node, "status": "ERROR",
			"status_reason": "node_lost: the node running the session stopped renewing its lease"}
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/sessions/"+finalID:
			writeJSON(w, http.StatusOK, record(finalID, "c"))
			return
		case r.Method == http.MethodGet && r.URL.Path == "/api/v1/nodes":
			writeJSON(w, http.StatusOK, map[string]any{"nodes": []map[string]any{
				{"name": "b", "healthy": !lost.Load()},
				{"name": "c", "healthy": true},
			}})
			return
		case lost.Load() && r.Method == http.MethodGet && r.URL.Path == "/api/v1/sessions/"+id:
			lostReads.Add(1)
			writeJSON(w, http.StatusOK, record(id, "b"))
			return
		case lost.Load() && strings.HasPrefix(r.URL.Path, "/api/v1/sessions/"+id+"/"):
			t.Errorf("the page sent %s %s while the record says node_lost", r.Method, r.URL.Path)
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": "node b is lost", "reason": "node_lost", "node": "b"})
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	p := newTab(t, "node-lost")
	p.navigate(front.URL + "/?" + testHook + "&renderer=dom#/s/" + id)
	eventually(t, "the page to read the node_lost record again and again", func() bool {
		return lostReads.Load() >= 3
	}, func() string { return p.connState() + ": " + p.text() })
	// Between two tries it shows reconnecting, during one connecting
	// (before its first hello, the page says connecting): never closed.
	if state := p.connState(); state != "reconnecting" && state != "connecting" {
		t.Fatalf("#conn-state is %q while the session's node is away, want it trying again; the page shows:\n%s", state, p.text())
	}

	lost.Store(false) // b is back, with the session
	p.waitAttached(id)
	p.typeLine("echo back-$((6*7))")
	p.waitLine("back-42")

	final := newTab(t, "node-lost-final")
	final.navigate(front.URL + "/?" + testHook + "&renderer=dom#/s/" + finalID)
	final.waitFor("the page to show the end of a final node_lost record",
		`(() => { const b = document.querySelector("#exit-banner");
			return (document.querySelector("#conn-state") || {dataset: {}}).dataset.state === "closed" &&
				!!b && b.checkVisibility() && b.textContent.includes("node_lost"); })()`,
		`[(document.querySelector("#exit-banner") || {}).textContent, (document.querySelector("#conn-state") || {dataset: {}}).dataset.state]`)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
