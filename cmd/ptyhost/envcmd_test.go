package main

import (
	"encoding/json"
	"strings"
	"testing"
)

const pluginTypes = `{"plugins": [
  {"name": "host", "types": ["HOST"], "capabilities": [], "state": "running"},
  {"name": "odd", "types": ["MixedCase", "lower"], "capabilities": [], "state": "running"}
]}`

// --type is matched against the plugins' types in any case; a type no
// plugin serves is sent in upper case, for the server to refuse.
func TestEnvAddTypeAnyCase(t *testing.T) {
	f := newFakeServer(t)
	f.respond("GET /api/v1/plugins", 200, pluginTypes)
	for typ, want := range map[string]string{
		"host": "HOST", "Host": "HOST", "HOST": "HOST",
		"mixedcase": "MixedCase", "LOWER": "lower", "lower": "lower",
		"docker": "DOCKER",
	} {
		code, _, stderr := runCmd(t, "env", "add", "--server", f.srv.URL, "--type", typ)
		r := f.requestsSoFar()
		last := r[len(r)-1]
		if code != 0 || last.body != `{"type":"`+want+`"}` {
			t.Errorf("--type %s: exit %d (%q), sent %s, want type %s", typ, code, stderr, last.body, want)
		}
	}
}

func TestEnvShow(t *testing.T) {
	f := newFakeServer(t)
	code, out, stderr := runCmd(t, "env", "show", "--server", f.srv.URL, "host")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"ID:           host\n", "Name:         This machine\n", "Type:         HOST\n",
		"Idle timeout: -\n", "Config:\n  {\n    \"shell\": \"/bin/bash\"\n  }\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("env show lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCmd(t, "env", "show", "--json", "--server", f.srv.URL, "host")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || got["id"] != "host" {
		t.Errorf("env show --json: exit %d, %q (%v)", code, out, err)
	}
	code, _, stderr = runCmd(t, "env", "show", "--server", f.srv.URL, "nope")
	if code != 1 || !strings.Contains(stderr, "(HTTP 404)") {
		t.Errorf("env show of an unknown environment: exit %d, stderr %q", code, stderr)
	}
}

// env update sends only what was given, PUT.
func TestEnvUpdate(t *testing.T) {
	f := newFakeServer(t)
	f.respond("PUT /api/v1/environments/dev", 200, `{"id": "dev", "type": "SSH"}`)
	tests := []struct {
		name     string
		args     []string
		wantBody string
	}{
		{"name", []string{"--name", "Dev"}, `{"name":"Dev"}`},
		{"clear the name", []string{"--name", ""}, `{"name":""}`},
		{"config", []string{"--config", `{"host": "box2"}`}, `{"config":{"host":"box2"}}`},
		{"idle timeout", []string{"--idle-timeout", "1h"}, `{"idle_timeout":"1h"}`},
		{"back to the server's idle timeout", []string{"--idle-timeout="}, `{"idle_timeout":""}`},
		{"all", []string{"--idle-timeout", "never", "--name", "x", "--config", "{}"}, `{"name":"x","config":{},"idle_timeout":"never"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCmd(t, append([]string{"env", "update", "--server", f.srv.URL, "dev"}, tt.args...)...)
			if code != 0 || out != "dev\n" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
			}
			r := f.requestsSoFar()
			last := r[len(r)-1]
			if last.method+" "+last.path != "PUT /api/v1/environments/dev" || last.body != tt.wantBody {
				t.Errorf("sent %s %s %s, want body %s", last.method, last.path, last.body, tt.wantBody)
			}
		})
	}
}

func TestEnvHealth(t *testing.T) {
	f := newFakeServer(t)
	f.respond("GET /api/v1/environments/host/health", 200, `{"environment_id": "host", "type": "HOST", "status": "healthy", "checked_at": "2026-11-25T10:00:00Z"}`)
	f.respond("GET /api/v1/environments/dev/health", 200, `{"environment_id": "dev", "type": "SSH", "status": "unhealthy", "reason": "dial tcp: no route to host", "checked_at": "2026-11-25T10:00:00Z"}`)

	code, out, stderr := runCmd(t, "env", "health", "--server", f.srv.URL, "host")
	if code != 0 || stderr != "" || out != "ID    TYPE  STATUS   REASON\nhost  HOST  healthy  -\n" {
		t.Errorf("env health host: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	// Without IDs: every environment; an unhealthy one exits 1.
	code, out, stderr = runCmd(t, "env", "health", "--server", f.srv.URL)
	want := "ID    TYPE  STATUS     REASON\nhost  HOST  healthy    -\ndev   SSH   unhealthy  dial tcp: no route to host\n"
	if code != 1 || out != want || stderr != "ptyhost: unhealthy: dev\n" {
		t.Errorf("env health: exit %d, stdout %q, stderr %q; want exit 1 and\n%s", code, out, stderr, want)
	}
	code, out, _ = runCmd(t, "env", "health", "--json", "--server", f.srv.URL, "host", "nope")
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); code != 1 || err != nil || len(got) != 1 || got[0]["status"] != "healthy" {
		t.Errorf("env health --json host nope: exit %d, %q (%v); want exit 1 and host's report", code, out, err)
	}
}

func TestEnvBadInput(t *testing.T) {
	f := newFakeServer(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"show no id", []string{"env", "show"}, "env show: want exactly one environment ID"},
		{"show two ids", []string{"env", "show", "a", "b"}, "env show: want exactly one environment ID"},
		{"update no id", []string{"env", "update", "--name", "x"}, "env update: want exactly one environment ID"},
		{"update nothing", []string{"env", "update", "dev"}, "env update: nothing to change"},
		{"update bad idle timeout", []string{"env", "update", "dev", "--idle-timeout", "soon"}, `env update: --idle-timeout "soon"`},
		{"update config not object", []string{"env", "update", "dev", "--config", "[]"}, "env update: --config must be a JSON object"},
		{"update config and file", []string{"env", "update", "dev", "--config", "{}", "--config-file", "x"}, "not both"},
		{"update type", []string{"env", "update", "dev", "--type", "HOST"}, "flag provided but not defined: -type"},
		{"health unknown flag", []string{"env", "health", "--all"}, "flag provided but not defined: -all"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, append(tt.args, "--server", f.srv.URL)...)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tt.want)
			}
		})
	}
	if r := f.requestsSoFar(); len(r) != 0 {
		t.Errorf("usage errors sent requests: %v", r)
	}
}
