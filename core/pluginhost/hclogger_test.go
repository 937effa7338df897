package pluginhost

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"
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

// TestHCLoggerBoundsAPluginsLines: the lines a plugin writes (go-plugin
// logs them through a Named logger) are logged at logRate a second after
// a burst of logBurst, the rest dropped and counted in a warning once
// lines go through again; go-plugin's own records are never dropped.
func TestHCLoggerBoundsAPluginsLines(t *testing.T) {
	var buf bytes.Buffer
	h := newHCLogger(slog.New(slog.NewTextHandler(&buf, nil)), "")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	plugin := h.Named("ptyhost-plugin-x").(*hcLogger)
	plugin.budget = newLogBudget(func() time.Time { return now })
	for range 3 * logBurst {
		plugin.With("k", "v").Error("flood")
	}
	h.Warn("plugin process exited")
	if n := strings.Count(buf.String(), "msg=flood"); n != logBurst {
		t.Errorf("%d of %d flood lines logged at once, want the burst, %d", n, 3*logBurst, logBurst)
	}
	if !strings.Contains(buf.String(), `msg="plugin process exited"`) {
		t.Error("go-plugin's own record was dropped with the plugin's lines")
	}
	buf.Reset()
	now = now.Add(time.Second)
	plugin.Error("flood")
	out := buf.String()
	if !strings.Contains(out, "dropped="+strconv.Itoa(2*logBurst)) || strings.Count(out, "msg=flood") != 1 {
		t.Errorf("a second later: %q, want the count of dropped lines, then the line", out)
	}
}
