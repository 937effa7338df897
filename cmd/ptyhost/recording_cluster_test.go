package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// getRecording downloads session id's recording from srv and returns its
// status and body.
func getRecording(t *testing.T, srv *e2etest.Server, id string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/sessions/"+id+"/recording", nil)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Token != "" {
		req.Header.Set("Authorization", "Bearer "+srv.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// A session recorded on b and pruned through a, with retention forever,
// loses its recording on b too: once it no longer lingers in b's memory,
// neither node serves it (b's record is gone, so b would answer itself),
// and b removes the file.
func TestRecordingPrunedThroughAnotherNode(t *testing.T) {
	dsn, _ := postgresSchemaDSN(t)
	a := startReachableNode(t, dsn, "a", "--retention", "forever")
	b := startReachableNode(t, dsn, "b", "--retention", "forever", "--linger", "500ms")
	id := b.CreateSession(t, map[string]any{"environment_id": "host-b", "record": true,
		"command": []string{"/bin/sh", "-c", "echo recorded-on-b"}})
	cast := filepath.Join(b.DataDir, "recordings", id+".cast")

	var code int
	var body string
	e2etest.Eventually(t, 10*time.Second, "the output in the recording, through a", func() bool {
		code, body = getRecording(t, a, id)
		return code == http.StatusOK && strings.Contains(body, "recorded-on-b")
	}, func() string { return fmt.Sprintf("%d %.200q", code, body) })

	// The end is written behind: prune until the record is gone.
	var pruned map[string]any
	e2etest.Eventually(t, 10*time.Second, "the prune through a to delete the record", func() bool {
		code, pruned = a.Request(t, "POST", "/api/v1/sessions/prune", map[string]any{})
		if code != http.StatusOK {
			t.Fatalf("prune through a: %d %v", code, pruned)
		}
		code, _, _ = a.Do("GET", "/api/v1/sessions/"+id, nil)
		return code == http.StatusNotFound
	}, func() string { return fmt.Sprintf("prune %v, then GET the session %d", pruned, code) })

	for _, srv := range []struct {
		name string
		srv  *e2etest.Server
	}{{"b", b}, {"a", a}} {
		e2etest.Eventually(t, 10*time.Second, "no recording through "+srv.name, func() bool {
			code, body = getRecording(t, srv.srv, id)
			return code == http.StatusNotFound
		}, func() string { return fmt.Sprintf("%d %.200q", code, body) })
	}
	if _, err := os.Stat(cast); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("b still keeps the recording of the pruned session: %v", err)
	}
}
