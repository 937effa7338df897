package main

import (
	"net/http"
	"testing"
	"time"
)

// TestTimestampsAsStored: what a create answers is what a read of the
// stored record answers later, to the digit. The database keeps
// microseconds; a server that answered with nanoseconds from memory gave
// a client two different created_at for one environment, and a session's
// timestamps changed once a server took it up from the store.
func TestTimestampsAsStored(t *testing.T) {
	srv := startServer(t)
	code, created := srv.Request(t, "POST", "/api/v1/environments", map[string]any{"id": "e1", "type": "HOST"})
	if code != http.StatusCreated {
		t.Fatalf("create environment: %d %v", code, created)
	}
	code, read := srv.Request(t, "GET", "/api/v1/environments/e1", nil)
	if code != http.StatusOK {
		t.Fatalf("read environment: %d %v", code, read)
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if created[k] == nil || created[k] != read[k] {
			t.Errorf("environment %s: created %v, read %v", k, created[k], read[k])
		}
	}

	code, sess := srv.Request(t, "POST", "/api/v1/sessions", map[string]any{"environment_id": "e1", "command": []string{"/bin/sh"}})
	if code != http.StatusCreated {
		t.Fatalf("create session: %d %v", code, sess)
	}
	id, _ := sess["id"].(string)
	live := srv.Session(t, id)
	if err := srv.Stop(t, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	next := srv.Restart(t)
	later := next.Session(t, id)
	if code, body := next.Request(t, "DELETE", "/api/v1/sessions/"+id, nil); code != http.StatusNoContent {
		t.Errorf("DELETE: %d %v", code, body)
	}
	for _, k := range []string{"created_at", "last_active_at", "detached_at"} {
		if sess[k] == nil || sess[k] != live[k] || live[k] != later[k] {
			t.Errorf("session %s: created %v, read %v, read by the next server %v", k, sess[k], live[k], later[k])
		}
	}
}
