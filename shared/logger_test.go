package shared

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// loggerChildEnv makes the test binary, run by TestLoggerLevel, log one
// line at each level through Logger and exit.
const loggerChildEnv = "PTYHOST_TEST_LOGGER_CHILD"

// TestLoggerLevel: a plugin's Logger logs at the level LogLevelEnv
// names; one that names no level is info, and the plugin says so in a
// warning naming the value.
func TestLoggerLevel(t *testing.T) {
	if os.Getenv(loggerChildEnv) != "" {
		l := Logger()
		l.Debug("at debug")
		l.Info("at info")
		l.Warn("at warn")
		os.Exit(0)
	}
	for _, tt := range []struct {
		value string
		want  []string // the messages logged, in order
	}{
		{"", []string{"at info", "at warn"}},
		{"debug", []string{"at debug", "at info", "at warn"}},
		{"WARN", []string{"at warn"}},
		{"bogus", []string{LogLevelEnv + " names no log level (trace, debug, info, warn, error or off); logging at info", "at info", "at warn"}},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLoggerLevel$")
		cmd.Env = append(os.Environ(), loggerChildEnv+"=1", LogLevelEnv+"="+tt.value)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s=%q: %v: %s", LogLevelEnv, tt.value, err, stderr.String())
		}
		var got []string
		for line := range strings.Lines(stderr.String()) {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("%s=%q: a line that is not JSON: %q", LogLevelEnv, tt.value, line)
			}
			msg, _ := rec["@message"].(string)
			got = append(got, msg)
			if strings.Contains(msg, "names no log level") && (rec["@level"] != "warn" || rec["value"] != tt.value) {
				t.Errorf("%s=%q: the warning is %v, want level warn and value %q", LogLevelEnv, tt.value, rec, tt.value)
			}
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%s=%q: logged %q, want %q", LogLevelEnv, tt.value, got, tt.want)
		}
	}
}

func TestParseLogLevel(t *testing.T) {
	for _, v := range []string{"", "trace", "Debug", "info", "warn", "error", "off"} {
		if _, err := ParseLogLevel(v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	for _, v := range []string{"bogus", "warning", " ", "1"} {
		if _, err := ParseLogLevel(v); err == nil || !strings.Contains(err.Error(), "trace, debug, info, warn, error or off") {
			t.Errorf("%q: %v, want an error listing the levels", v, err)
		}
	}
}
