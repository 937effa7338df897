package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/pluginhost"
)

// serveEnv lists the variables serve reads; every config test starts with
// them unset.
var serveEnv = []string{
	"PTYHOST_CONFIG", "PTYHOST_LISTEN", "PTYHOST_DB", "PTYHOST_DATA_DIR", "PTYHOST_PLUGIN_DIR", "PTYHOST_TOKEN",
	"PTYHOST_SCROLLBACK", "PTYHOST_IDLE_TIMEOUT", "PTYHOST_LINGER", "PTYHOST_SHUTDOWN_TIMEOUT",
	"PTYHOST_LOG_LEVEL", "PTYHOST_LOG_FORMAT", "PTYHOST_WORKDIR_ROOTS", "PTYHOST_RETENTION", "PTYHOST_METRICS_AUTH",
	"PTYHOST_ORPHAN_TIMEOUT", "PTYHOST_HANG_UP_ON_STOP", "PTYHOST_WEB", "PTYHOST_PLUGIN_LOG_LEVEL",
}

func clearServeEnv(t *testing.T) {
	t.Helper()
	for _, name := range serveEnv {
		t.Setenv(name, "") // restored after the test
		os.Unsetenv(name)
	}
}

// writeConfig writes a configuration file and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ptyhost.hcl")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const fullConfig = `# ptyhost.hcl
listen     = "127.0.0.1:7421"
db         = "sqlite:/var/lib/ptyhost/ptyhost.db"
data_dir   = "/var/lib/ptyhost"
plugin_dir = "/usr/lib/ptyhost/plugins"
token      = "s3cret-s3cret-s3cret"
scrollback = "512KiB"
idle_timeout = "6m"
linger     = "7m"
shutdown_timeout = "11s"
orphan_timeout = "3m"
hang_up_on_stop = true
log_level  = "debug"
log_format = "json"
allowed_origins = ["*.example.com"]

plugin "tmux" {
  sha256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
  env    = { TMUX_TMPDIR = "/run/ptyhost" }
  args   = ["--flag"]
}
plugin "docker" {
  sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
}
`

func TestConfigFile(t *testing.T) {
	clearServeEnv(t)
	plugins := t.TempDir() // the plugin directory must exist
	path := writeConfig(t, strings.Replace(fullConfig, "/usr/lib/ptyhost/plugins", plugins, 1))
	c, err := parseServeFlags([]string{"--config", path}, stdio{out: io.Discard, err: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	pin := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	want := serveConfig{
		listen: "127.0.0.1:7421", db: "sqlite:/var/lib/ptyhost/ptyhost.db", dataDir: "/var/lib/ptyhost",
		pluginDir: plugins, token: "s3cret-s3cret-s3cret", allowedOrigins: stringList{"*.example.com"},
		scrollback: 512 << 10, idleTimeout: 6 * time.Minute, linger: 7 * time.Minute, shutdownTimeout: 11 * time.Second,
		orphanTimeout: 3 * time.Minute, hangUpOnStop: true, logLevel: slog.LevelDebug, logFormat: "json", configPath: path,
		plugins: []pluginhost.Config{
			{Name: "tmux", SHA256: pin, Env: map[string]string{"TMUX_TMPDIR": "/run/ptyhost"}, Args: []string{"--flag"}},
			{Name: "docker", SHA256: pin},
		},
	}
	if !equalServeConfig(c, want) {
		t.Errorf("parsed\n%+v\nwant\n%+v", c, want)
	}

	// Every field is optional; PTYHOST_CONFIG names the file too.
	t.Setenv("PTYHOST_CONFIG", writeConfig(t, "# nothing\n"))
	c, err = parseServeFlags(nil, stdio{out: io.Discard, err: io.Discard})
	if err != nil || c.listen != DefaultListen || len(c.plugins) != 0 || c.configPath == "" {
		t.Errorf("an empty file: %+v, %v", c, err)
	}
}

func equalServeConfig(a, b serveConfig) bool {
	eqPlugins := slices.EqualFunc(a.plugins, b.plugins, func(x, y pluginhost.Config) bool {
		return x.Name == y.Name && x.SHA256 == y.SHA256 && slices.Equal(x.Args, y.Args) &&
			len(x.Env) == len(y.Env) && (x.Env == nil || strings.Join(mapPairs(x.Env), ",") == strings.Join(mapPairs(y.Env), ","))
	})
	a.plugins, b.plugins = nil, nil
	eqOrigins := slices.Equal(a.allowedOrigins, b.allowedOrigins)
	a.allowedOrigins, b.allowedOrigins = nil, nil
	return eqPlugins && eqOrigins && a.listen == b.listen && a.db == b.db && a.dataDir == b.dataDir &&
		a.pluginDir == b.pluginDir && a.token == b.token && a.insecure == b.insecure && a.scrollback == b.scrollback &&
		a.idleTimeout == b.idleTimeout && a.linger == b.linger && a.shutdownTimeout == b.shutdownTimeout &&
		a.orphanTimeout == b.orphanTimeout && a.hangUpOnStop == b.hangUpOnStop &&
		a.logLevel == b.logLevel && a.logFormat == b.logFormat && a.configPath == b.configPath
}

func mapPairs(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string // in the message, besides the file's name
	}{
		{"syntax", "listen = \"127.0.0.1:7420\"\nplugin \"x\" {\n", []string{":2,", "Unclosed configuration block"}},
		{"unknown attribute", "listen = \"127.0.0.1:7420\"\nlisten_port = 7420\n", []string{":2,1:", "Unsupported argument", `"listen_port"`}},
		{"unknown block", "\nserver {\n}\n", []string{":2,1:", "Unsupported block type", `"server"`}},
		{"unknown plugin attribute", "plugin \"tmux\" {\n  sha = \"x\"\n}\n", []string{":2,3:", "Unsupported argument", `"sha"`}},
		{"bad size", "listen = \"127.0.0.1:7420\"\nscrollback = \"lots\"\n", []string{":2,14:", "Invalid scrollback", "256KiB"}},
		{"bad duration", "\n\nlinger = \"forever\"\n", []string{":3,10:", "Invalid linger", "forever"}},
		{"bad log level", "log_level = \"loud\"\n", []string{":1,13:", "Invalid log_level"}},
		{"bad log format", "log_format = \"xml\"\n", []string{":1,14:", "Invalid log_format", "text or json"}},
		{"wrong type", "allowed_origins = \"a\"\n", []string{":1,", "list of string required"}},
		{"duplicate plugin", "plugin \"tmux\" {}\n\nplugin \"tmux\" {}\n", []string{":3,8:", "Duplicate plugin block", `"tmux" is already defined at`, ":1,8"}},
		{"short sha256", "plugin \"tmux\" {\n  sha256 = \"9f86d0\"\n}\n", []string{":2,12:", "Invalid sha256", "64 hex digits"}},
		{"sha256 not hex", "plugin \"tmux\" {\n  sha256 = \"" + strings.Repeat("g", 64) + "\"\n}\n", []string{":2,12:", "Invalid sha256"}},
		{"bad plugin name", "plugin \"../evil\" {}\n", []string{":1,8:", "Invalid plugin name"}},
		{"plugin without a name", "plugin {}\n", []string{":1,8:", "Missing name for plugin"}},
		{"bad env name", "plugin \"tmux\" {\n  env = { \"A=B\" = \"c\" }\n}\n", []string{":2,9:", "Invalid env"}},
		{"two errors", "scrollback = \"lots\"\nlinger = \"never\"\n", []string{":1,14: Invalid scrollback", ":2,10: Invalid linger"}},
		// Values that parse but cannot be, each at its place, in order.
		{"values", "linger = \"0s\"\nshutdown_timeout = \"0s\"\norphan_timeout = \"-1m\"\nlisten = \"nope\"\ntoken = \"short\"\n" +
			"allowed_hosts = [\"a:b\"]\nnode_lease = \"100ms\"\nread_token = \"tiny\"\nallowed_origins = [\"a b\"]\n",
			[]string{
				":1,10: Invalid linger; \"0s\": must be positive\n",
				":2,20: Invalid shutdown_timeout", ":3,18: Invalid orphan_timeout",
				":4,10: Invalid listen", ":5,9: Invalid token; 5 bytes long", ":6,17: Invalid allowed_hosts",
				":7,14: Invalid node_lease; \"100ms\": want at least 1s", ":8,14: Invalid read_token; 4 bytes long", ":9,19: Invalid allowed_origins",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearServeEnv(t)
			path := writeConfig(t, tt.content)
			code, stdout, stderr := runCmd(t, "serve", "--config", path, "--listen", "127.0.0.1:0")
			if code != 2 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, stdout)
			}
			for _, want := range append([]string{"ptyhost: " + path}, tt.want...) {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q lacks %q", stderr, want)
				}
			}
			if strings.Contains(stderr, `"short"`) || strings.Contains(stderr, `"tiny"`) {
				t.Errorf("stderr %q shows a token", stderr)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		clearServeEnv(t)
		path := filepath.Join(t.TempDir(), "nope.hcl")
		code, _, stderr := runCmd(t, "serve", "--config", path)
		if code != 2 || !strings.Contains(stderr, path) {
			t.Errorf("exit %d, stderr %q; want 2 naming the file", code, stderr)
		}
	})
}

// A flag wins over its variable, which wins over the file, which wins
// over the default.
func TestConfigPrecedence(t *testing.T) {
	file := writeConfig(t, "linger = \"3m\"\nlisten = \"127.0.0.1:7003\"\ntoken = \"file-token-0123456789\"\n")
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		config     bool
		linger     time.Duration
		listen     string
		token      string
		scrollback int
	}{
		{"defaults", nil, nil, false, core.DefaultLinger, DefaultListen, "", core.DefaultScrollbackBytes},
		{"file", nil, nil, true, 3 * time.Minute, "127.0.0.1:7003", "file-token-0123456789", core.DefaultScrollbackBytes},
		{"env over file", nil, map[string]string{"PTYHOST_LINGER": "2m", "PTYHOST_TOKEN": "env-token-0123456789"}, true,
			2 * time.Minute, "127.0.0.1:7003", "env-token-0123456789", core.DefaultScrollbackBytes},
		{"flag over env and file", []string{"--linger", "1m", "--listen", "127.0.0.1:7001"}, map[string]string{"PTYHOST_LINGER": "2m", "PTYHOST_LISTEN": "127.0.0.1:7002"}, true,
			time.Minute, "127.0.0.1:7001", "file-token-0123456789", core.DefaultScrollbackBytes},
		{"env without file", nil, map[string]string{"PTYHOST_SCROLLBACK": "8KiB"}, false, core.DefaultLinger, DefaultListen, "", 8 << 10},
		{"config from env", nil, map[string]string{"PTYHOST_CONFIG": file}, false, 3 * time.Minute, "127.0.0.1:7003", "file-token-0123456789", core.DefaultScrollbackBytes},
		{"config flag over env", []string{"--config", file}, map[string]string{"PTYHOST_CONFIG": "/nonexistent.hcl"}, false,
			3 * time.Minute, "127.0.0.1:7003", "file-token-0123456789", core.DefaultScrollbackBytes},
		// A variable set to "" counts as unset: it does not turn the
		// file's token off, nor the file's settings back to defaults.
		{"empty env", nil, map[string]string{"PTYHOST_TOKEN": "", "PTYHOST_LINGER": "", "PTYHOST_LISTEN": ""}, true,
			3 * time.Minute, "127.0.0.1:7003", "file-token-0123456789", core.DefaultScrollbackBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearServeEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := tt.args
			if tt.config {
				args = append([]string{"--config", file}, args...)
			}
			c, err := parseServeFlags(args, stdio{out: io.Discard, err: io.Discard})
			if err != nil {
				t.Fatal(err)
			}
			if c.linger != tt.linger || c.listen != tt.listen || c.token != tt.token || int(c.scrollback) != tt.scrollback {
				t.Errorf("linger %v, listen %s, token %q, scrollback %d; want %v, %s, %q, %d",
					c.linger, c.listen, c.token, c.scrollback, tt.linger, tt.listen, tt.token, tt.scrollback)
			}
		})
	}

	t.Run("empty tokens in the file", func(t *testing.T) {
		clearServeEnv(t)
		f := writeConfig(t, "token = \"\"\nread_token = \"\"\n")
		c, err := parseServeFlags([]string{"--config", f}, stdio{out: io.Discard, err: io.Discard})
		if err != nil || c.token != "" || c.readToken != "" {
			t.Errorf("tokens %q, %q, %v; want none, no error", c.token, c.readToken, err)
		}
	})

	t.Run("empty workdir roots variable", func(t *testing.T) {
		clearServeEnv(t)
		root := t.TempDir()
		f := writeConfig(t, fmt.Sprintf("workdir_roots = [%q]\n", root))
		t.Setenv("PTYHOST_WORKDIR_ROOTS", "")
		c, err := parseServeFlags([]string{"--config", f}, stdio{out: io.Discard, err: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.workdirRoots) != 1 || c.workdirRoots[0] != root {
			t.Errorf("workdir roots %q, want the file's %q", c.workdirRoots, root)
		}
	})

	t.Run("bad variable", func(t *testing.T) {
		clearServeEnv(t)
		t.Setenv("PTYHOST_LINGER", "soon")
		if _, err := parseServeFlags(nil, stdio{out: io.Discard, err: io.Discard}); err == nil || !strings.Contains(err.Error(), "PTYHOST_LINGER") {
			t.Errorf("err = %v, want one naming PTYHOST_LINGER", err)
		}
	})
}

// The variables never passed to sessions come from the file, the
// environment or the flag, in that order of precedence, each a list.
func TestNeverEnvSettings(t *testing.T) {
	clearServeEnv(t)
	path := writeConfig(t, "never_env = [\"CLAUDECODE\", \"AWS_SECRET_ACCESS_KEY\"]\n")
	for _, tt := range []struct {
		name string
		env  string
		args []string
		want []string
	}{
		{"file", "", nil, []string{"CLAUDECODE", "AWS_SECRET_ACCESS_KEY"}},
		{"variable", "GITHUB_TOKEN,NPM_TOKEN", nil, []string{"GITHUB_TOKEN", "NPM_TOKEN"}},
		{"flag", "GITHUB_TOKEN", []string{"--never-env", "ONLY"}, []string{"ONLY"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("PTYHOST_NEVER_ENV", tt.env)
			if tt.env == "" {
				os.Unsetenv("PTYHOST_NEVER_ENV")
			}
			c, err := parseServeFlags(append([]string{"--config", path}, tt.args...), stdio{out: io.Discard, err: io.Discard})
			if err != nil || !slices.Equal(c.neverEnv, tt.want) {
				t.Errorf("never env %q, %v; want %q", c.neverEnv, err, tt.want)
			}
		})
	}
	for _, name := range []string{"A=B", "A.B", "1A", "A B"} {
		bad := writeConfig(t, fmt.Sprintf("never_env = [%q]\n", name))
		if _, err := parseServeFlags([]string{"--config", bad}, stdio{out: io.Discard, err: io.Discard}); err == nil || !strings.Contains(err.Error(), "never_env") {
			t.Errorf("never_env = [%q]: %v, want an error naming never_env", name, err)
		}
		if _, err := parseServeFlags([]string{"--never-env", name}, stdio{out: io.Discard, err: io.Discard}); err == nil {
			t.Errorf("--never-env %q: no error", name)
		}
	}
}
