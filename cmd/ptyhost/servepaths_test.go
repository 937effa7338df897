package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A plugin directory that is missing or a file, and an SQLite DSN without
// a path, are mistakes in serve's flags or configuration: usage errors
// (exit 2) naming the flag, the variable or the file's attribute, before
// anything starts (they failed with exit 1 once the server started).
func TestServePluginDirAndDBChecked(t *testing.T) {
	clearServeEnv(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	for _, tt := range []struct {
		args []string
		env  string
		want string
	}{
		{args: []string{"--plugin-dir", "/nonexistent"}, want: `--plugin-dir "/nonexistent" does not exist`},
		{args: []string{"--plugin-dir", file}, want: `--plugin-dir "` + file + `" is not a directory`},
		{args: []string{"--config", writeConfig(t, "plugin_dir = \"plugins\"\n")}, want: `: plugin_dir: "plugins" does not exist`},
		{env: "relative", want: `PTYHOST_PLUGIN_DIR: "relative" does not exist`},
		{args: []string{"--db", "sqlite:"}, want: "--db: sqlite: has no path"},
		{args: []string{"--db", "sqlite:?_pragma=x"}, want: "--db: sqlite: has no path"},
		{args: []string{"--config", writeConfig(t, "db = \"sqlite:\"\n")}, want: "db; sqlite: has no path"},
	} {
		t.Setenv("PTYHOST_PLUGIN_DIR", tt.env)
		_, err := parseServeFlags(tt.args, stdio{out: io.Discard, err: io.Discard})
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q, PTYHOST_PLUGIN_DIR=%q: %v; want a usage error with %q", tt.args, tt.env, err, tt.want)
		}
	}
	t.Setenv("PTYHOST_PLUGIN_DIR", "")
	if err := os.Mkdir("plugins", 0o700); err != nil {
		t.Fatal(err)
	}
	if c, err := parseServeFlags([]string{"--plugin-dir", "plugins", "--db", "sqlite::memory:"}, stdio{out: io.Discard, err: io.Discard}); err != nil || c.pluginDir != "plugins" {
		t.Errorf("--plugin-dir plugins (relative, present): %q, %v", c.pluginDir, err)
	}
	// A flag wins over the file: the file's missing directory does not
	// matter then.
	cfg := writeConfig(t, "plugin_dir = \"/nonexistent/plugins\"\n")
	if c, err := parseServeFlags([]string{"--config", cfg, "--plugin-dir", "plugins", "--db", "sqlite::memory:"}, stdio{out: io.Discard, err: io.Discard}); err != nil || c.pluginDir != "plugins" {
		t.Errorf("a file's missing plugin_dir under --plugin-dir plugins: %q, %v; want plugins", c.pluginDir, err)
	}
}

// A relative XDG_DATA_HOME is ignored, as the XDG Base Directory
// specification says: the data directory is then under the home
// directory.
func TestDefaultDataDirRelativeXDG(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_DATA_HOME", "relative/data")
	if got, want := defaultDataDir(), filepath.Join(home, ".local", "share", "ptyhost"); got != want {
		t.Errorf("XDG_DATA_HOME=relative/data: %q; want %q", got, want)
	}
	t.Setenv("XDG_DATA_HOME", "/srv/data")
	if got := defaultDataDir(); got != "/srv/data/ptyhost" {
		t.Errorf("XDG_DATA_HOME=/srv/data: %q; want /srv/data/ptyhost", got)
	}
}
