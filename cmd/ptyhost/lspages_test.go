package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// ptyhost ls lists every session: the client follows next_cursor through
// the pages.
func TestListSessionsFollowsCursor(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("cursor") {
		case "":
			fmt.Fprint(w, `{"sessions":[{"id":"a"},{"id":"b"}],"next_cursor":"p2"}`)
		case "p2":
			fmt.Fprint(w, `{"sessions":[{"id":"c"}],"next_cursor":"p3"}`)
		case "p3":
			fmt.Fprint(w, `{"sessions":[]}`)
		default:
			http.Error(w, `{"error":"bad cursor"}`, 400)
		}
	}))
	defer srv.Close()
	c, err := newClient(srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	raw, partial, err := c.listSessionsRaw(t.Context())
	if err != nil || partial != "" {
		t.Fatalf("%v, partial %q", err, partial)
	}
	var got []struct{ ID string }
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if fmt.Sprint(got) != "[{a} {b} {c}]" {
		t.Errorf("sessions %v, want a, b and c", got)
	}
	want := "[limit=1000 limit=1000&cursor=p2 limit=1000&cursor=p3]"
	if fmt.Sprint(queries) != want {
		t.Errorf("queries %v, want %s", queries, want)
	}
}

// A page the server marks partial (its database unavailable: the sessions
// it has in memory alone) is listed with a warning on stderr, whatever
// the output's form; an ID prefix is not resolved among such a list.
func TestLsWarnsOfPartialList(t *testing.T) {
	f := newFakeServer(t)
	f.onlyListed = true
	f.respond("GET /api/v1/sessions", 200, `{"sessions": [
  {"id": "s1", "environment_id": "host", "status": "ACTIVE", "active_connections": 1,
   "cols": 80, "rows": 24, "created_at": "2026-11-25T10:00:00Z"}],
 "partial": true, "partial_reason": "the database is unavailable: connection refused"}`)
	const warning = "ptyhost: warning: the list holds only the sessions the server has in memory: the database is unavailable: connection refused\n"
	for _, args := range [][]string{nil, {"-q"}, {"--json"}} {
		code, out, stderr := runCmd(t, append([]string{"ls", "--server", f.srv.URL}, args...)...)
		if code != 0 || !strings.Contains(out, "s1") || stderr != warning {
			t.Errorf("ls %q of a partial list: exit %d, stdout %q, stderr %q; want s1 and the warning %q", args, code, out, stderr, warning)
		}
	}
	code, _, stderr := runCmd(t, "kill", "--server", f.srv.URL, "s")
	if code != 1 || !strings.Contains(stderr, "session ID prefix s cannot be resolved") || !strings.Contains(stderr, "give the whole ID") {
		t.Errorf("kill of a prefix among a partial list: exit %d, stderr %q; want 1 and that it cannot be resolved", code, stderr)
	}
	for _, r := range f.requestsSoFar() {
		if r.method == "DELETE" {
			t.Errorf("a partial list's prefix was acted on: %s %s", r.method, r.path)
		}
	}
}
