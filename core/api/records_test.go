package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// The row of a session answered 201 is in the store when the answer
// leaves, written before the plugin was asked; the coalescing writer only
// follows it up.
func TestCreateWritesTheRowFirst(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	var atSpawn core.SessionRecord
	var atSpawnErr error
	api.env.SetSpawn(func(_ context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		atSpawn, atSpawnErr = api.store.GetSession(context.Background(), req.SessionID)
		if req.SessionID == "fails" {
			return nil, fmt.Errorf("the daemon said no")
		}
		return fakeenv.NewPTY(req), nil
	})

	if code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"first","environment_id":"fake"}`); code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	if atSpawnErr != nil || atSpawn.Status != core.StatusStarting || atSpawn.EnvironmentID != "fake" {
		t.Errorf("row when the plugin was asked: %+v, %v; want it STARTING", atSpawn, atSpawnErr)
	}
	// No waiting: the row is there as the 201 arrives.
	if rec, err := api.store.GetSession(context.Background(), "first"); err != nil {
		t.Errorf("row right after the 201: %v", err)
	} else if rec.Status != core.StatusStarting && rec.Status != core.StatusActive {
		t.Errorf("row right after the 201: %+v", rec)
	}
	eventually(t, "the row to become ACTIVE", func() bool {
		rec, err := api.store.GetSession(context.Background(), "first")
		return err == nil && rec.Status == core.StatusActive
	})

	if code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"fails","environment_id":"fake"}`); code != 502 {
		t.Fatalf("create with a failing plugin: %d %v", code, body)
	}
	eventually(t, "the failed session's row to become ERROR", func() bool {
		rec, err := api.store.GetSession(context.Background(), "fails")
		return err == nil && rec.Status == core.StatusError && strings.Contains(rec.StatusReason, "the daemon said no")
	})
}

// Shutdown records the sessions it hangs up as ended by it, and leaves the
// record of those that had ended before it alone.
func TestCloseKeepsTheStatusOfEndedSessions(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	for _, id := range []string{"exited", "lost", "running"} {
		if code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"`+id+`","environment_id":"fake"}`); code != 201 {
			t.Fatalf("create %s: %d %v", id, code, body)
		}
	}
	spawned := map[string]*fakeenv.PTY{}
	for _, p := range api.env.Spawned() {
		spawned[p.Req.SessionID] = p
	}
	spawned["exited"].End(shared.ExitStatus{Code: 7})
	spawned["lost"].End(shared.ExitStatus{Code: -1, Reason: "docker daemon went away"})
	want := map[string]struct {
		status, reason string
		code           float64
	}{
		"exited":  {"TERMINATED", "", 7},
		"lost":    {"ERROR", "docker daemon went away", -1},
		"running": {"TERMINATED", core.ReasonServerShutdown, -1},
	}
	for _, id := range []string{"exited", "lost"} {
		eventually(t, id+" to end", func() bool {
			_, body := api.do(t, "GET", "/api/v1/sessions/"+id, "")
			return body["status"] == want[id].status
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := api.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for id, w := range want {
		code, body := api.do(t, "GET", "/api/v1/sessions/"+id, "")
		reason, _ := body["status_reason"].(string)
		if code != 200 || body["status"] != w.status || reason != w.reason {
			t.Errorf("%s after shutdown: %d %v; want %s with reason %q", id, code, body, w.status, w.reason)
		}
		if id != "running" && body["exit_code"] != w.code {
			t.Errorf("%s after shutdown: exit_code %v, want %v", id, body["exit_code"], w.code)
		}
	}
}

// Ids "." and "..", an empty command[0] and NUL bytes in the argv are
// refused with 400 and the reason, before anything is recorded or started.
func TestRESTCreateRejectsUnusableInput(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	tests := []struct {
		name, body, reason string
	}{
		{"dot id", `{"id":".","environment_id":"fake"}`, "not addressable"},
		{"dot-dot id", `{"id":"..","environment_id":"fake"}`, "not addressable"},
		{"empty command", `{"environment_id":"fake","command":[""]}`, "command[0] is empty"},
		{"empty program with args", `{"environment_id":"fake","command":["","-c","id"]}`, "command[0] is empty"},
		{"NUL in the program", `{"environment_id":"fake","command":["/bin/sh\u0000x"]}`, "command[0] holds a NUL byte"},
		{"NUL in an argument", `{"environment_id":"fake","command":["/bin/sh","-c","id\u0000"]}`, "command[2] holds a NUL byte"},
		{"NUL in an env value", `{"environment_id":"fake","env":{"A":"b\u0000c"}}`, "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := api.do(t, "POST", "/api/v1/sessions", tt.body)
			if code != 400 {
				t.Fatalf("status %d, want 400 (%v)", code, body)
			}
			if msg, _ := body["error"].(string); !strings.Contains(msg, tt.reason) {
				t.Errorf("error %q does not say %q", msg, tt.reason)
			}
		})
	}
	if n := api.env.Count(); n != 0 {
		t.Errorf("%d sessions spawned", n)
	}
	if recs, _ := api.store.ListSessions(context.Background()); len(recs) != 0 {
		t.Errorf("rows recorded: %+v", recs)
	}
	// The ids are still fine inside a longer id.
	if code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"..a.","environment_id":"fake"}`); code != 201 {
		t.Errorf("id with dots: %d %v", code, body)
	}
}

// While the database is down, creates answer 503 with nothing started and
// /healthz reports the store; when it is back, both recover.
func TestStoreOutageAnswers503(t *testing.T) {
	var store *outageStore
	api := newAPI(t, Options{}, func(o *core.Options) {
		store = &outageStore{Store: o.Store}
		o.Store = store
	})
	if code, body := api.do(t, "GET", "/healthz", ""); code != 200 || body["status"] != "ok" || body["store"] != "ok" {
		t.Fatalf("healthz: %d %v", code, body)
	}
	if code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"before","environment_id":"fake"}`); code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}

	store.down.Store(true)
	eventually(t, "healthz to report the store", func() bool {
		code, body := api.do(t, "GET", "/healthz", "")
		// The cause is logged, not told to a caller without a token.
		return code == 503 && body["status"] == "degraded" && body["store"] == "unavailable"
	})
	for _, id := range []string{"during-1", "during-2"} {
		code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"`+id+`","environment_id":"fake"}`)
		if msg, _ := body["error"].(string); code != 503 || !strings.Contains(msg, "database is unavailable") {
			t.Errorf("create during the outage: %d %v, want 503 saying the database is unavailable", code, body)
		}
	}
	if n := api.env.Count(); n != 1 {
		t.Errorf("%d sessions spawned, want only the one before the outage", n)
	}
	// The list is of the sessions in memory (listoutage_test.go).
	if code, body := api.do(t, "GET", "/api/v1/sessions?status=TERMINATED", ""); code != 200 || body["partial"] != true {
		t.Errorf("list during the outage: %d %v, want 200, partial", code, body)
	}
	if code, body := api.do(t, "GET", "/api/v1/sessions/before", ""); code != 200 || body["status"] != "ACTIVE" {
		t.Errorf("a live session during the outage: %d %v", code, body)
	}
	// Nothing half-made: the id is free when the database is back.
	store.down.Store(false)
	eventually(t, "healthz to recover", func() bool {
		code, body := api.do(t, "GET", "/healthz", "")
		return code == 200 && body["store"] == "ok"
	})
	if code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"during-1","environment_id":"fake"}`); code != 201 {
		t.Errorf("create after the outage: %d %v", code, body)
	}
}

// Concurrent health checks share one store ping per second.
func TestHealthzIsCached(t *testing.T) {
	var store *outageStore
	api := newAPI(t, Options{}, func(o *core.Options) {
		store = &outageStore{Store: o.Store}
		o.Store = store
	})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() { // no t.Fatal off the test's goroutine: Errorf only
			resp, err := http.Get(api.srv.URL + "/healthz")
			if err != nil {
				t.Errorf("healthz: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("healthz: %d", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if n := store.pings.Load(); n < 1 || n > 3 {
		t.Errorf("20 concurrent health checks pinged the store %d times", n)
	}
}

func TestRESTListPagesAndFilters(t *testing.T) {
	api := newAPI(t, Options{}, nil)
	if err := api.store.CreateEnvironment(t.Context(), core.Environment{ID: "other", Name: "other", Type: "FAKE"}); err != nil {
		t.Fatal(err)
	}
	var all []string
	for i := range 7 {
		id := fmt.Sprintf("s%d", i)
		env := "fake"
		if i%3 == 0 {
			env = "other"
		}
		if code, body := api.do(t, "POST", "/api/v1/sessions", `{"id":"`+id+`","environment_id":"`+env+`"}`); code != 201 {
			t.Fatalf("create: %d %v", code, body)
		}
		all = append(all, id)
	}
	for _, id := range []string{"s1", "s4"} {
		if code, _ := api.do(t, "DELETE", "/api/v1/sessions/"+id, ""); code != 204 {
			t.Fatalf("delete %s: %d", id, code)
		}
	}

	// list walks the pages, following next_cursor.
	list := func(query string) []string {
		t.Helper()
		var ids []string
		cursor := ""
		for page := 0; ; page++ {
			if page > 10 {
				t.Fatalf("%s: too many pages", query)
			}
			q := query
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			code, body := api.do(t, "GET", "/api/v1/sessions?"+q, "")
			if code != 200 {
				t.Fatalf("list %s: %d %v", q, code, body)
			}
			for _, s := range body["sessions"].([]any) {
				ids = append(ids, s.(map[string]any)["id"].(string))
			}
			next, ok := body["next_cursor"].(string)
			if !ok {
				return ids
			}
			cursor = next
		}
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", all},
		{"limit=1", all},
		{"limit=3", all},
		{"limit=7", all},
		{"limit=1000", all},
		{"status=TERMINATED", []string{"s1", "s4"}},
		{"status=terminated&limit=1", []string{"s1", "s4"}},
		{"status=ACTIVE,TERMINATED&limit=2", all},
		{"status=ACTIVE&status=TERMINATED&limit=2", all},
		{"environment_id=other&limit=2", []string{"s0", "s3", "s6"}},
		{"environment_id=fake&status=ACTIVE", []string{"s2", "s5"}},
		{"environment_id=nope", nil},
		{"status=ERROR", nil},
	}
	for _, tt := range tests {
		if got := list(tt.query); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("list %q = %v, want %v", tt.query, got, tt.want)
		}
	}
	// An empty list is an empty array, not null.
	if code, body := api.do(t, "GET", "/api/v1/sessions?status=ERROR", ""); code != 200 || body["sessions"] == nil {
		t.Errorf("empty list: %d %v", code, body)
	}

	bad := []struct{ query, reason string }{
		{"status=NOPE", `status "NOPE"`},
		{"limit=0", "limit"},
		{"limit=-1", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"cursor=", "cursor"},
		{"cursor=bm90IGEgY3Vyc29y", "cursor"},
		{"cursor=%25%25", "cursor"},
		{"environment_id=", "environment_id"},
		{"stauts=ACTIVE", `unknown query parameter "stauts"`},
		{"limit=5&limit=500", "limit is given 2 times"},
		{"environment_id=a&environment_id=b", "environment_id is given 2 times"},
		{"cursor=x&cursor=y", "cursor is given 2 times"},
	}
	for _, b := range bad {
		code, body := api.do(t, "GET", "/api/v1/sessions?"+b.query, "")
		if msg, _ := body["error"].(string); code != 400 || !strings.Contains(msg, b.reason) {
			t.Errorf("list %q: %d %v; want 400 mentioning %q", b.query, code, body, b.reason)
		}
	}
}
