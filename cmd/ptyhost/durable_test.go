package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// A 201 is durable: every session a server answered 201 for is in the
// database, and running, even when the server is killed the moment the
// answer arrives: the next server takes it up. Each round kills the server
// on the first 201 of several concurrent creates; the next round's server
// checks the round before.
func TestCreatedSessionSurvivesServerKill(t *testing.T) {
	dataDir := t.TempDir()
	const rounds, perRound = 8, 8
	var created []string // answered 201 in the round before
	// Every server runs the same plugin binaries, so that the next one
	// takes up the plugin process the killed one left.
	opts := e2etest.Options{DataDir: dataDir, Args: []string{"--orphan-timeout", restartOrphanTimeout}}
	for round := range rounds + 1 {
		server := e2etest.Start(t, opts)
		opts = server.Options()
		url := server.URL
		for _, id := range created {
			resp, err := http.Get(url + "/api/v1/sessions/" + id)
			if err != nil {
				t.Fatal(err)
			}
			var rec map[string]any
			decodeBody(t, resp, &rec)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s after the restart: %d %v; a session answered 201 must be on record", id, resp.StatusCode, rec)
				continue
			}
			if st := rec["status"]; st != "ACTIVE" && st != "IDLE" {
				t.Errorf("%s after the restart: %v, want it taken up, ACTIVE or IDLE", id, rec)
			}
		}
		if round == rounds {
			break // the cleanup's stop hangs every session up
		}
		created = created[:0]
		var mu sync.Mutex
		var kill sync.Once
		var wg sync.WaitGroup
		for i := range perRound {
			id := fmt.Sprintf("durable-%d-%d", round, i)
			wg.Go(func() {
				body := fmt.Sprintf(`{"id":%q,"environment_id":"host","command":["sleep","3600"]}`, id)
				resp, err := http.Post(url+"/api/v1/sessions", "application/json", strings.NewReader(body))
				if err != nil {
					return // the server was killed first
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					mu.Lock()
					created = append(created, id)
					mu.Unlock()
					kill.Do(func() { server.Signal(t, syscall.SIGKILL) })
				}
			})
		}
		wg.Wait()
		_ = server.Wait(t, 30*time.Second)
		if len(created) == 0 {
			t.Fatalf("round %d: no create succeeded", round)
		}
	}
}

func decodeBody(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: body is not JSON: %v", resp.Request.URL, err)
	}
}
