package pluginhost

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// go-plugin's "plugin" key (the executable's path) does not repeat the
// server's "plugin" (the plugin's name) in a JSON log: it is plugin_path,
// from Log's arguments and from With; the plugin's own timestamp is left
// out.
func TestHCLoggerKeys(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, nil)).With("plugin", "ssh")
	h := newHCLogger(l, "")
	h.Info("plugin process exited", "plugin", "/x/ptyhost-plugin-ssh", "id", 7, "timestamp", "then")
	h.With("plugin", "/x/ptyhost-plugin-ssh").Info("started")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log %q, want two lines", buf.String())
	}
	for _, line := range lines {
		if n := strings.Count(line, `"plugin":`); n != 1 {
			t.Errorf("%s: the key plugin %d times, want once", line, n)
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["plugin"] != "ssh" || rec["plugin_path"] != "/x/ptyhost-plugin-ssh" || rec["timestamp"] != nil {
			t.Errorf("%s: want plugin ssh, plugin_path /x/ptyhost-plugin-ssh, no timestamp", line)
		}
	}
}
