package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/internal/testbin"
)

const cannedPlugins = `{"plugins": [
  {"name": "docker", "version": "1.2.0", "path": "/p/ptyhost-plugin-docker", "sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
   "types": ["DOCKER"], "capabilities": ["health"], "state": "running", "restarts": 2, "pid": 42},
  {"name": "tmux", "path": "/p/ptyhost-plugin-tmux", "sha256": "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210", "pinned": true,
   "types": [], "capabilities": [], "state": "refused", "reason": "sha256 mismatch: the configuration pins 00, but /p/ptyhost-plugin-tmux has fe", "restarts": 0},
  {"name": "ssh", "version": "1.0.0", "path": "/p/ptyhost-plugin-ssh", "sha256": "aa",
   "types": ["SSH"], "capabilities": [], "state": "failed", "reason": "crashed 5 times in 1m0s; circuit open: run 'ptyhost plugins restart ssh'", "restarts": 4}
]}`

func TestPluginsCommand(t *testing.T) {
	f := newFakeServer(t)
	f.respond("GET /api/v1/plugins", 200, cannedPlugins)
	f.respond("POST /api/v1/plugins/docker/restart", 200, `{"name": "docker", "state": "running", "pid": 43, "restarts": 3, "types": ["DOCKER"]}`)
	f.respond("POST /api/v1/plugins/ssh/restart", 200, `{"name": "ssh", "state": "failed", "reason": "did not start: boom", "restarts": 5, "types": ["SSH"]}`)
	f.respond("POST /api/v1/plugins/slow/restart", 202, `{"name": "slow", "state": "starting", "restarts": 1, "types": []}`)
	f.respond("POST /api/v1/plugins/nope/restart", 404, `{"error": "plugin not found: \"nope\""}`)
	server := []string{"--server", f.srv.URL}

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"list", []string{"plugins"}, 0, "" +
			"NAME    VERSION  STATE    TYPES   RESTARTS  SHA256        PATH\n" +
			"docker  1.2.0    running  DOCKER  2         0123456789ab  /p/ptyhost-plugin-docker\n" +
			"tmux    -        refused  -       0         fedcba987654  /p/ptyhost-plugin-tmux\n" +
			"ssh     1.0.0    failed   SSH     4         aa            /p/ptyhost-plugin-ssh\n" +
			"tmux: sha256 mismatch: the configuration pins 00, but /p/ptyhost-plugin-tmux has fe\n" +
			"ssh: crashed 5 times in 1m0s; circuit open: run 'ptyhost plugins restart ssh'\n", ""},
		{"ls", []string{"plugins", "ls"}, 0, "NAME    VERSION", ""},
		{"json", []string{"plugins", "--json"}, 0, `"sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"`, ""},
		{"restart", []string{"plugins", "restart", "docker"}, 0, "docker: running (pid 43, restarts 3)\n", ""},
		{"restart that fails", []string{"plugins", "restart", "ssh"}, 1, "", "ptyhost: plugin ssh is failed: did not start: boom\n"},
		{"restart still starting", []string{"plugins", "restart", "slow"}, 0, "slow: still starting; see 'ptyhost plugins'\n", ""},
		{"restart of an unknown plugin", []string{"plugins", "restart", "nope"}, 1, "", "ptyhost: plugins restart nope: plugin not found: \"nope\" (HTTP 404)\n"},
		{"restart without a name", []string{"plugins", "restart"}, 2, "", "want exactly one plugin NAME"},
		{"unknown subcommand", []string{"plugins", "frobnicate"}, 2, "", `unknown command "frobnicate"`},
		// restart is a command, given after a flag; ls takes no argument.
		{"flag before restart", []string{"plugins", "--json", "restart", "docker"}, 2, "", `plugins: the command "restart" comes first, before the flags: 'ptyhost plugins restart [flags]'`},
		{"ls with an argument", []string{"plugins", "ls", "docker"}, 2, "", `plugins ls: unexpected argument "docker"`},
		{"help", []string{"plugins", "--help"}, 0, "circuit open", ""},
		{"restart help", []string{"plugins", "restart", "--help"}, 0, "plugin_restarted", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append(tt.args, server...)
			code, stdout, stderr := runCmd(t, args...)
			if code != tt.code || !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("exit %d\nstdout %q\nstderr %q\nwant exit %d, stdout with %q, stderr with %q", code, stdout, stderr, tt.code, tt.stdout, tt.stderr)
			}
			if tt.name == "list" && stdout != tt.stdout {
				t.Errorf("stdout\n%s\nwant\n%s", stdout, tt.stdout)
			}
		})
	}
}

// The real server with a configuration file: only the named third-party
// plugins start, a wrong pin refuses its plugin, and the plugins command
// and endpoints show it all.
func TestServePluginsEndToEnd(t *testing.T) {
	clearServeEnv(t)
	fake := testbin.Path(t, "core/pluginhost/testdata/fakeplugin", "plugins/ptyhost-plugin-fake")
	dir := testbin.PluginDir(t, "host")
	for _, name := range []string{"extra", "pinned", "stray"} {
		if err := os.Symlink(fake, filepath.Join(dir, "ptyhost-plugin-"+name)); err != nil {
			t.Fatal(err)
		}
	}
	wrong := strings.Repeat("ab", 32)
	config := writeConfig(t, `
plugin "extra" {
  args = ["-types", "EXTRA"]
  env  = { FOO = "bar" }
}
plugin "pinned" {
  sha256 = "`+wrong+`"
}
`)
	s := startServer(t, "--plugin-dir", dir, "--config", config)

	code, body := s.Request(t, "GET", "/api/v1/plugins", nil)
	if code != 200 {
		t.Fatalf("GET /api/v1/plugins: %d %v", code, body)
	}
	b, _ := json.Marshal(body["plugins"])
	var plugins []plugin
	json.Unmarshal(b, &plugins)
	states := map[string]string{}
	for _, p := range plugins {
		states[p.Name] = string(p.State)
	}
	want := map[string]string{"extra": "running", "host": "running", "pinned": "refused"}
	if len(states) != len(want) || states["extra"] != want["extra"] || states["host"] != want["host"] || states["pinned"] != want["pinned"] {
		t.Errorf("plugin states %v, want %v (and no stray)", states, want)
	}

	code, stdout, stderr := runCmd(t, "plugins", "--server", s.URL)
	if code != 0 || !strings.Contains(stdout, "pinned: sha256 mismatch: the configuration pins "+wrong) || strings.Contains(stdout, "stray") {
		t.Errorf("plugins: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd(t, "plugins", "restart", "extra", "--server", s.URL)
	if code != 0 || !strings.HasPrefix(stdout, "extra: running (pid ") || !strings.Contains(stdout, "restarts 1)") {
		t.Errorf("plugins restart extra: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr = runCmd(t, "plugins", "restart", "pinned", "--server", s.URL)
	if code != 1 || !strings.Contains(stderr, "plugin pinned is refused: sha256 mismatch") {
		t.Errorf("plugins restart pinned: exit %d, stderr %q", code, stderr)
	}

	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	for _, line := range []string{
		`ptyhost_plugin_state{plugin="pinned",state="refused"} 1`,
		`ptyhost_plugin_state{plugin="extra",state="running"} 1`,
		`ptyhost_plugin_restarts_total{plugin="extra"} 1`,
	} {
		if !strings.Contains(string(metrics), line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}
