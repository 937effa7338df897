package pluginlog

import (
	"encoding/json"
	"maps"
	"slices"

	"github.com/hashicorp/go-hclog"
)

// Parse reads a line of a plugin's log, which hclog writes as JSON: its
// level, its message, and its other fields as key-value pairs sorted by
// key, its time among them as "logged_at" (when the plugin logged it,
// which may be long before the server relays it). "@module", the part of
// the plugin a Named logger logged for, and "@caller" stay, as go-plugin
// keeps them for the lines it reads from the plugin's stderr, so that a
// line reads the same whichever way it came. Any other line is
// what the runtime writes of a crash (a panic's trace): an error of its
// own text.
func Parse(line []byte) (level hclog.Level, msg string, args []any) {
	var fields map[string]any
	if json.Unmarshal(line, &fields) != nil {
		return hclog.Error, string(line), nil
	}
	level = hclog.Info
	if v, ok := fields["@level"].(string); ok {
		if l := hclog.LevelFromString(v); l != hclog.NoLevel {
			level = l
		}
	}
	msg, _ = fields["@message"].(string)
	if t, ok := fields["@timestamp"]; ok {
		fields["logged_at"] = t
	}
	for _, k := range []string{"@level", "@message", "@timestamp"} {
		delete(fields, k)
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		args = append(args, k, fields[k])
	}
	return level, msg, args
}
