package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/ptyhost/ptyhost/shared"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name   string
		config string
		// err is a substring of the error; empty means valid.
		err   string
		check func(t *testing.T, c config)
	}{
		{name: "image only", config: `{"image": "debian:12"}`, check: func(t *testing.T, c config) {
			if c.Pull != PullMissing || c.WorkdirTarget != "/workspace" || !c.remove() || !c.init() || c.Privileged || c.LogDriver != "none" {
				t.Errorf("defaults: %+v", c)
			}
		}},
		{name: "container only", config: `{"container": "dev-box", "user": "1000:1000", "workdir_target": "/src"}`, check: func(t *testing.T, c config) {
			if !c.execMode() || c.WorkdirTarget != "/src" {
				t.Errorf("exec config: %+v", c)
			}
		}},
		{name: "container default workdir", config: `{"container": "dev-box"}`, check: func(t *testing.T, c config) {
			if c.WorkdirTarget != "" {
				t.Errorf("exec mode has workdir_target %q by default; want none", c.WorkdirTarget)
			}
		}},
		{name: "everything", config: `{"host": "unix:///run/docker.sock", "image": "registry.example.com:5000/team/dev@sha256:` + strings.Repeat("a", 64) + `",
			"shell": "/bin/bash", "user": "dev", "env": {"A": "1"},
			"mounts": [{"source": "/srv/cache", "target": "/cache", "read_only": true}],
			"workdir_target": "/w", "network": "none", "memory": "1g", "cpus": "1.5",
			"pull": "always", "remove": false, "privileged": true, "cap_add": ["NET_ADMIN", "CAP_SYS_PTRACE"], "init": false}`,
			check: func(t *testing.T, c config) {
				if c.Memory != 1<<30 || c.CPUs != 1.5 || c.remove() || c.init() || !c.Privileged || len(c.Mounts) != 1 || !c.Mounts[0].ReadOnly {
					t.Errorf("parsed %+v", c)
				}
			}},
		{name: "memory in bytes", config: `{"image": "x", "memory": 67108864}`, check: func(t *testing.T, c config) {
			if c.Memory != 64<<20 {
				t.Errorf("memory %d", c.Memory)
			}
		}},
		{name: "empty", config: ``, err: `"image" or "container" is required`},
		{name: "null", config: `null`, err: `"image" or "container" is required`},
		{name: "no image", config: `{}`, err: `"image" or "container" is required`},
		{name: "image and container", config: `{"image": "x", "container": "y"}`, err: "exclusive"},
		{name: "unknown field", config: `{"image": "x", "volumes": []}`, err: `unknown field "volumes"`},
		{name: "trailing data", config: `{"image": "x"} {}`, err: "trailing data"},
		{name: "not an object", config: `["x"]`, err: "cannot unmarshal"},
		{name: "bad image", config: `{"image": "UPPER/Case"}`, err: "image"},
		{name: "bad container", config: `{"container": "a b"}`, err: "not a container name"},
		{name: "bad host", config: `{"image": "x", "host": "/var/run/docker.sock"}`, err: "host"},
		{name: "bad host scheme", config: `{"image": "x", "host": "ssh://me@box"}`, err: `unsupported scheme "ssh"`},
		{name: "bad env", config: `{"image": "x", "env": {"A=B": "c"}}`, err: "bad variable name"},
		{name: "relative mount source", config: `{"image": "x", "mounts": [{"source": "cache", "target": "/cache"}]}`, err: `source "cache" is not an absolute path`},
		{name: "relative mount target", config: `{"image": "x", "mounts": [{"source": "/cache", "target": "cache"}]}`, err: "target"},
		{name: "mount over the worktree", config: `{"image": "x", "mounts": [{"source": "/c", "target": "/workspace/"}]}`, err: "mounted twice"},
		{name: "duplicate mount", config: `{"image": "x", "mounts": [{"source": "/a", "target": "/m"}, {"source": "/b", "target": "/m"}]}`, err: "mounted twice"},
		{name: "mount unknown field", config: `{"image": "x", "mounts": [{"source": "/a", "target": "/m", "readonly": true}]}`, err: `mounts[0]: unknown field "readonly"`},
		{name: "mount wrong type", config: `{"image": "x", "mounts": [{"source": "/a", "target": "/m"}, {"source": 1}]}`, err: "mounts[1].source: cannot unmarshal number into string"},
		{name: "relative workdir", config: `{"image": "x", "workdir_target": "w"}`, err: "workdir_target"},
		{name: "shell with NUL", config: `{"image": "x", "shell": "/bin/sh\u0000x"}`, err: `shell: "/bin/sh\x00x" is not a program name or path: it contains NUL`},
		{name: "exec shell with NUL", config: `{"container": "c", "shell": "/bin/sh\u0000x"}`, err: "contains NUL"},
		{name: "mount source with NUL", config: `{"image": "x", "mounts": [{"source": "/srv\u0000x", "target": "/c"}]}`, err: `mounts[0]: source "/srv\x00x" contains NUL`},
		{name: "log option value with NUL", config: `{"image": "x", "log_driver": "json-file", "log_options": {"max-size": "1\u0000m"}}`, err: `log_options: the value of "max-size" contains NUL`},
		{name: "workdir at the root", config: `{"image": "x", "workdir_target": "/"}`, err: `workdir_target: "/" is the container's root`},
		{name: "workdir at the root, uncleaned", config: `{"image": "x", "workdir_target": "/workspace/.."}`, err: "the container's root"},
		{name: "workdir on the plugin's mounts", config: `{"image": "x", "workdir_target": "/.ptyhost"}`, err: `workdir_target: "/.ptyhost": /.ptyhost and what is under it hold the plugin's own mounts`},
		{name: "mount at the root", config: `{"image": "x", "mounts": [{"source": "/srv", "target": "//"}]}`, err: `mounts[0]: target: "//" is the container's root`},
		{name: "mount over the plugin's mounts", config: `{"image": "x", "mounts": [{"source": "/srv", "target": "/.ptyhost/init"}]}`, err: `mounts[0]: target: "/.ptyhost/init": /.ptyhost and what`},
		{name: "mount on the plugin's directory", config: `{"image": "x", "mounts": [{"source": "/srv", "target": "/.ptyhost/"}]}`, err: "the plugin's own mounts"},
		{name: "mount beside the plugin's directory", config: `{"image": "x", "mounts": [{"source": "/srv", "target": "/.ptyhostx"}]}`},
		{name: "exec workdir at the root", config: `{"container": "c", "workdir_target": "/"}`, check: func(t *testing.T, c config) {
			if c.WorkdirTarget != "/" {
				t.Errorf("workdir_target %q", c.WorkdirTarget)
			}
		}},
		{name: "bad pull", config: `{"image": "x", "pull": "sometimes"}`, err: `pull "sometimes"`},
		{name: "bad memory", config: `{"image": "x", "memory": "lots"}`, err: `memory: "lots": want bytes or a size`},
		{name: "memory too small", config: `{"image": "x", "memory": "1m"}`, err: `memory: "1m" is below Docker's minimum`},
		{name: "bad cpus", config: `{"image": "x", "cpus": "many"}`, err: `cpus: "many": want a number`},
		{name: "zero cpus", config: `{"image": "x", "cpus": 0}`, err: "cpus: 0: want 0.01 to 4096"},
		{name: "bad cap", config: `{"image": "x", "cap_add": ["NET ADMIN"]}`, err: "cap_add"},
		{name: "unknown cap", config: `{"image": "x", "cap_add": ["NOT_A_CAP"]}`, err: `cap_add: "NOT_A_CAP" is not a Linux capability`},
		{name: "unknown cap with prefix", config: `{"image": "x", "cap_add": ["CAP_NOT_A_CAP"]}`, err: "not a Linux capability"},
		{name: "caps as docker spells them", config: `{"image": "x", "cap_add": ["chown", "Cap_Net_Raw", "CAP_CHECKPOINT_RESTORE", "all"]}`},
		{name: "http host", config: `{"image": "x", "host": "http://127.0.0.1:2375"}`, err: "scheme http is not accepted"},
		{name: "https host", config: `{"image": "x", "host": "https://docker.example.com:2376"}`, err: "scheme https is not accepted"},
		{name: "npipe host", config: `{"image": "x", "host": "npipe:////./pipe/docker_engine"}`, err: `unsupported scheme "npipe"`},
		{name: "relative unix socket", config: `{"image": "x", "host": "unix://docker.sock"}`, err: "absolute path"},
		{name: "bad user", config: `{"image": "x", "user": "a:b:c"}`, err: "user"},
		{name: "exec with mounts", config: `{"container": "c", "mounts": [{"source": "/a", "target": "/b"}]}`, err: "mounts does not apply to exec mode"},
		{name: "exec with memory", config: `{"container": "c", "memory": "1g"}`, err: "memory does not apply"},
		{name: "log driver kept", config: `{"image": "x", "log_driver": "json-file", "log_options": {"max-size": "10m"}}`, check: func(t *testing.T, c config) {
			if c.LogDriver != "json-file" || c.LogOptions["max-size"] != "10m" {
				t.Errorf("log config: %q %v", c.LogDriver, c.LogOptions)
			}
		}},
		{name: "exec mode has no log driver", config: `{"container": "c"}`, check: func(t *testing.T, c config) {
			if c.LogDriver != "" {
				t.Errorf("exec mode log driver %q; want none set", c.LogDriver)
			}
		}},
		{name: "bad log driver", config: `{"image": "x", "log_driver": "json file"}`, err: `log_driver "json file" is not a log driver's name`},
		{name: "log options without driver", config: `{"image": "x", "log_options": {"max-size": "1m"}}`, err: "log_options need a log_driver"},
		{name: "log options for none", config: `{"image": "x", "log_driver": "none", "log_options": {"max-size": "1m"}}`, err: "takes no options"},
		{name: "bad log option", config: `{"image": "x", "log_driver": "local", "log_options": {"a=b": "1"}}`, err: `log_options: "a=b" is not an option name`},
		{name: "exec with log driver", config: `{"container": "c", "log_driver": "local"}`, err: "log_driver does not apply"},
		{name: "bad terminal", config: `{"image": "x", "terminal": "tty"}`, err: `terminal "tty": want "direct" or "daemon"`},
		{name: "exec with terminal", config: `{"container": "c", "terminal": "direct"}`, err: "terminal does not apply"},
		{name: "exec with pull", config: `{"container": "c", "pull": "never"}`, err: "pull does not apply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig(json.RawMessage(tt.config))
			if tt.err == "" {
				if err != nil {
					t.Fatalf("parseConfig: %v", err)
				}
				if tt.check != nil {
					tt.check(t, c)
				}
				return
			}
			if !errors.Is(err, shared.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseConfig = %v, want ErrInvalidConfig mentioning %q", err, tt.err)
			}
		})
	}
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"512m", 512 << 20, true},
		{"512M", 512 << 20, true},
		{"512mb", 512 << 20, true},
		{"1g", 1 << 30, true},
		{"1.5GiB", 3 << 29, true},
		{"2t", 2 << 40, true},
		{" 64k ", 64 << 10, true},
		{"", 0, false},
		{"m", 0, false},
		{"-1g", 0, false},
		{"1x", 0, false},
		{"1e3", 0, false},
		{"99999999999t", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseMemory(tt.in)
			if tt.ok && (err != nil || got != tt.want) {
				t.Errorf("parseMemory(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
			if !tt.ok && err == nil {
				t.Errorf("parseMemory(%q) = %d, want an error", tt.in, got)
			}
		})
	}
}

func TestCPUs(t *testing.T) {
	tests := []struct {
		in   string
		nano int64
		ok   bool
	}{
		{`1`, 1e9, true},
		{`1.5`, 15e8, true},
		{`"0.25"`, 25e7, true},
		{`0.01`, 1e7, true},
		{`0.001`, 0, false},
		{`-1`, 0, false},
		{`"one"`, 0, false},
		{`true`, 0, false},
		{`100000`, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var c cpuCount
			err := json.Unmarshal([]byte(tt.in), &c)
			if tt.ok && (err != nil || c.nanoCPUs() != tt.nano) {
				t.Errorf("cpus %s = %d nano, %v; want %d", tt.in, c.nanoCPUs(), err, tt.nano)
			}
			if !tt.ok && err == nil {
				t.Errorf("cpus %s accepted as %v", tt.in, float64(c))
			}
		})
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name   string
		code   int
		signal string
	}{
		{"success", 0, ""},
		{"failure", 1, ""},
		{"not found", 127, ""},
		{"exit 128", 128, ""},
		{"hangup", 129, "SIGHUP"},
		{"interrupt", 130, "SIGINT"},
		{"kill", 137, "SIGKILL"},
		{"segfault", 139, "SIGSEGV"},
		{"term", 143, "SIGTERM"},
		{"child stopped is not fatal", 128 + 17, ""},
		{"stop is not fatal", 128 + 19, ""},
		{"winch is not fatal", 128 + 28, ""},
		{"sys", 128 + 31, "SIGSYS"},
		{"beyond the standard signals", 128 + 34, ""},
		{"large", 255, ""},
		{"negative", -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := exitStatus(tt.code)
			if st.Code != tt.code || st.Signal != tt.signal || st.Reason != "" {
				t.Errorf("exitStatus(%d) = %+v, want signal %q", tt.code, st, tt.signal)
			}
		})
	}
}

func TestSessionEnv(t *testing.T) {
	got := sessionEnv(map[string]string{"A": "config", "TERM": "dumb", "B": "config", "COLORTERM": "24bit"}, map[string]string{"B": "session"})
	want := []string{"A=config", "B=session", "COLORTERM=24bit", "TERM=dumb"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("sessionEnv = %q, want %q", got, want)
	}
	got = sessionEnv(map[string]string{"COLORTERM": "24bit"}, map[string]string{"COLORTERM": ""})
	if want := []string{"COLORTERM=", "TERM=xterm-256color"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("sessionEnv = %q, want the session's COLORTERM to win: %q", got, want)
	}
	if got, want := sessionEnv(), []string{"COLORTERM=truecolor", "TERM=xterm-256color"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("sessionEnv() = %q, want %q", got, want)
	}
}

// A tcp:// daemon is accepted only with TLS configured for the client,
// and verifying the daemon's certificate.
func TestHostTCPNeedsTLS(t *testing.T) {
	cfg := json.RawMessage(`{"image": "x", "host": "tcp://docker.example.com:2376"}`)
	t.Setenv(envCertPath, "")
	t.Setenv(envTLSVerify, "")
	if _, err := parseConfig(cfg); !errors.Is(err, shared.ErrInvalidConfig) || !strings.Contains(err.Error(), "tcp:// needs TLS") {
		t.Errorf("without %s: parseConfig = %v, want ErrInvalidConfig saying tcp:// needs TLS", envCertPath, err)
	}
	t.Setenv(envCertPath, t.TempDir())
	if _, err := parseConfig(cfg); !errors.Is(err, shared.ErrInvalidConfig) || !strings.Contains(err.Error(), "set "+envTLSVerify+"=1") {
		t.Errorf("with %s but not %s: parseConfig = %v, want ErrInvalidConfig saying to set %s=1", envCertPath, envTLSVerify, err, envTLSVerify)
	}
	t.Setenv(envTLSVerify, "1")
	if _, err := parseConfig(cfg); err != nil {
		t.Errorf("with %s and %s: parseConfig = %v", envCertPath, envTLSVerify, err)
	}
	if _, err := parseConfig(json.RawMessage(`{"image": "x", "host": "tcp://docker.example.com"}`)); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Errorf("tcp:// without a port: parseConfig = %v, want an error asking for host:port", err)
	}
}

func TestContainerName(t *testing.T) {
	for _, id := range []string{"abc", "with spaces/and:colons", strings.Repeat("x", 100), "é"} {
		n := containerNameFor(id)
		if !containerName.MatchString(n) || len(n) > 64 {
			t.Errorf("containerNameFor(%q) = %q, not a container name", id, n)
		}
	}
	if a, b := containerNameFor("a"), containerNameFor("a"); a == b {
		t.Error("two containers of one session id get the same name")
	}
}

// An owner is this machine's only when both its hostname and its boot id
// are: then it is gone when its pid no longer runs, or runs another
// process. Every other label is unknown, and its container is left alone:
// another machine of the same name (another boot id), an older plugin's
// label without a boot id, another machine, no owner.
func TestOwner(t *testing.T) {
	m := thisMachine()
	if m.boot == "" {
		t.Skip("no boot id on this system")
	}
	me := ownerID()
	if gone, known := m.ownerGone(me); gone || !known {
		t.Errorf("ownerGone(self %q) = %v, %v; want alive and known", me, gone, known)
	}
	parts := strings.Split(me, "/")
	if len(parts) != 4 || parts[0] != m.host || parts[3] != m.boot {
		t.Fatalf("ownerID() = %q, want host/pid/start/boot", me)
	}
	host, boot := parts[0], parts[3]
	const otherBoot = "00000000-0000-4000-8000-000000000000"
	tests := []struct {
		name        string
		m           machine
		owner       string
		gone, known bool
	}{
		{"reused pid", m, host + "/" + parts[1] + "/1/" + boot, true, true},
		{"no such pid", m, host + "/999999999/1/" + boot, true, true},
		{"same name, another boot", m, host + "/999999999/1/" + otherBoot, false, false},
		{"an older plugin's, without a boot id", m, host + "/999999999/1", false, false},
		{"empty boot id", m, host + "/999999999/1/", false, false},
		{"another machine", m, "elsewhere.example/999999999/1/" + boot, false, false},
		{"this machine knows no boot id", machine{host: host}, host + "/999999999/1/", false, false},
		{"pid not a number", m, host + "/x/1/" + boot, false, false},
		{"not an owner", m, "garbage", false, false},
		{"empty", m, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if parts[2] == "" && tt.name == "reused pid" {
				t.Skip("no /proc: start times are unknown")
			}
			gone, known := tt.m.ownerGone(tt.owner)
			if gone != tt.gone || known != tt.known {
				t.Errorf("ownerGone(%q) = %v, %v; want %v, %v", tt.owner, gone, known, tt.gone, tt.known)
			}
		})
	}
}
