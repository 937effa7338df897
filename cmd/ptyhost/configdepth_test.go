package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigNestingTooDeep: a file whose brackets nest without end is
// refused at once with FILE:LINE,COLUMN, instead of overflowing the
// parser's stack (a crash, and a GiB of memory on the way); brackets in
// strings and comments do not count, and a real file's nesting passes.
func TestConfigNestingTooDeep(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, src, want string
	}{
		{"lists", "listen = \"127.0.0.1:7420\"\nx = " + strings.Repeat("[", 150000) + "\n", ":2,205: Nesting too deep"},
		{"parentheses", strings.Repeat("(", 500000), ":1,201: Nesting too deep"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".hcl")
			if err := os.WriteFile(path, []byte(tt.src), 0o600); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err := loadConfigFile(path, func(string, string) error { return nil })
			if err == nil || !strings.Contains(err.Error(), path+tt.want) {
				t.Fatalf("loadConfigFile: %v, want %q", err, path+tt.want)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("refusing took %v", took)
			}
		})
	}
	// Deep brackets inside strings and comments are text.
	deep := strings.Repeat("[", 1000)
	path := filepath.Join(dir, "ok.hcl")
	src := "# " + deep + "\n/* " + deep + " */\nlisten = \"127.0.0.1:7420\" // " + deep + "\ntoken = \"" + deep + "\\\"" + deep + "\"\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfigFile(path, func(string, string) error { return nil }); err != nil && strings.Contains(err.Error(), "Nesting") {
		t.Errorf("brackets in strings and comments counted: %v", err)
	}
}
