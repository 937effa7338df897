package api

import (
	"net/url"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/core"
)

// While the database is down, GET /api/v1/sessions answers 200 with the
// sessions the server holds in memory, filtered and paged as asked, and
// "partial": true with the reason; once it is back, the whole list,
// without the two fields.
func TestListSessionsStoreOutagePartial(t *testing.T) {
	var store *outageStore
	api := newAPI(t, Options{}, func(o *core.Options) {
		store = &outageStore{Store: o.Store}
		o.Store = store
	})
	for _, id := range []string{"a", "b"} {
		if code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"`+id+`","environment_id":"fake"}`); code != 201 {
			t.Fatalf("create %s: %d %v", id, code, body)
		}
	}
	list := func(query string) (ids string, cursor string, body map[string]any) {
		t.Helper()
		code, body := api.do(t, "GET", "/api/v1/sessions"+query, "")
		sessions, ok := body["sessions"].([]any)
		if code != 200 || !ok {
			t.Fatalf("GET /api/v1/sessions%s: %d %v", query, code, body)
		}
		var names []string
		for _, s := range sessions {
			names = append(names, s.(map[string]any)["id"].(string))
		}
		cursor, _ = body["next_cursor"].(string)
		return strings.Join(names, " "), cursor, body
	}

	store.down.Store(true)
	t.Cleanup(func() { store.down.Store(false) }) // before the manager's Close
	for query, want := range map[string]string{
		"":                          "a b",
		"?status=TERMINATED":        "",
		"?environment_id=fake":      "a b",
		"?environment_id=other":     "",
		"?status=active,idle,ERROR": "a b",
	} {
		ids, cursor, body := list(query)
		reason, _ := body["partial_reason"].(string)
		if ids != want || cursor != "" || body["partial"] != true || !strings.Contains(reason, "database is unavailable") {
			t.Errorf("GET /api/v1/sessions%s during the outage: %v; want sessions %q, partial, with the reason", query, body, want)
		}
	}
	ids, cursor, _ := list("?limit=1")
	if ids != "a" || cursor == "" {
		t.Fatalf("first page of 1 during the outage: %q, cursor %q; want a and a cursor", ids, cursor)
	}
	if ids, cursor, body := list("?limit=1&cursor=" + url.QueryEscape(cursor)); ids != "b" || cursor != "" || body["partial"] != true {
		t.Errorf("second page during the outage: %v; want b, partial, the last", body)
	}

	store.down.Store(false)
	if ids, _, body := list(""); ids != "a b" || body["partial"] != nil || body["partial_reason"] != nil {
		t.Errorf("after the outage: %v; want a b, without partial", body)
	}
}
