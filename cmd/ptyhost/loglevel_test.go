package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeLogLevelSaysWhatItWants: a bad --log-level, PTYHOST_LOG_LEVEL or
// log_level is refused in the words its siblings use (--log-format,
// PTYHOST_PLUGIN_LOG_LEVEL), naming the levels, not with slog's internal
// "slog: level string ...: unknown name".
func TestServeLogLevelSaysWhatItWants(t *testing.T) {
	const want = `"loud": want debug, info, warn or error`
	check := func(what string, err error) {
		t.Helper()
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%s: err = %v, want a usage error", what, err)
			return
		}
		if msg := err.Error(); !strings.Contains(msg, want) || strings.Contains(msg, "slog") {
			t.Errorf("%s: err = %q, want one saying %q", what, msg, want)
		}
	}
	check("--log-level", run(t.Context(), []string{"serve", "--data-dir", t.TempDir(), "--log-level", "loud"}, stdio{out: io.Discard, err: io.Discard}))

	t.Setenv("PTYHOST_LOG_LEVEL", "loud")
	check("PTYHOST_LOG_LEVEL", run(t.Context(), []string{"serve", "--data-dir", t.TempDir()}, stdio{out: io.Discard, err: io.Discard}))
	t.Setenv("PTYHOST_LOG_LEVEL", "")

	file := filepath.Join(t.TempDir(), "ptyhost.hcl")
	if err := os.WriteFile(file, []byte("log_level = \"loud\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	check("log_level", run(t.Context(), []string{"serve", "--data-dir", t.TempDir(), "--config", file}, stdio{out: io.Discard, err: io.Discard}))

	// The levels in any case, and slog's offsets, still parse.
	for _, v := range []string{"debug", "INFO", "Warn", "error", "debug-2"} {
		if err := checkSetting("log-level", v); err != nil {
			t.Errorf("--log-level %s: %v", v, err)
		}
	}
}

// TestServeLogFormatInAnyCase: --log-format takes its formats in any
// case, as --log-level its levels, and logs in the one named.
func TestServeLogFormatInAnyCase(t *testing.T) {
	for _, v := range []string{"JSON", "Text"} {
		c, err := parseServeFlags([]string{"--data-dir", t.TempDir(), "--log-format", v}, stdio{out: io.Discard, err: io.Discard})
		if err != nil {
			t.Errorf("--log-format %s: %v", v, err)
			continue
		}
		if want := strings.ToLower(v); c.logFormat != want {
			t.Errorf("--log-format %s: format %q, want %q", v, c.logFormat, want)
		}
	}
	if err := checkSetting("log-format", "xml"); err == nil || !strings.Contains(err.Error(), `"xml": want text or json`) {
		t.Errorf("--log-format xml: %v, want it refused naming text and json", err)
	}
}
