package shared

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// TestHoldLogsDurationsReadably: a plugin logs JSON, which go-plugin
// decodes on the server's side, where a time.Duration logged as such
// arrives as a float (orphan_timeout=6e+11). The hold's lines carry the
// orphan timeout as Go writes a duration.
func TestHoldLogsDurationsReadably(t *testing.T) {
	var logged bytes.Buffer
	srv := NewGRPCServer(&fakeEnv{}, hclog.New(&hclog.LoggerOptions{Output: &logged, Level: hclog.Trace, JSONFormat: true}))
	(&orphanClock{}).install(srv)
	if !srv.holdOpened(10 * time.Minute) {
		t.Fatal("holdOpened refused the first host")
	}
	srv.holdClosed()

	lines := bytes.Split(bytes.TrimSpace(logged.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("logged %d lines, want 2:\n%s", len(lines), logged.Bytes())
	}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if got := rec["orphan_timeout"]; got != "10m0s" {
			t.Errorf("orphan_timeout %#v, want \"10m0s\": %s", got, line)
		}
	}
}
