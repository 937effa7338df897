package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	raw, err := c.listSessionsRaw(t.Context())
	if err != nil {
		t.Fatal(err)
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
