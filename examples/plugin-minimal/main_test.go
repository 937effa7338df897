package main

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

// conformanceConfig is the conformance cases' config. The plugin inherits
// FROM_PLUGIN (a server's variable), and the environment's config sets
// FROM_CONFIG: unset_env checks UnsetEnv removes both.
func conformanceConfig(t *testing.T) sharedtest.Config {
	t.Setenv("FROM_PLUGIN", "yes")
	return sharedtest.Config{
		Config:    json.RawMessage(`{"env": {"FROM_CONFIG": "yes"}}`),
		UnsetEnv:  []string{"FROM_PLUGIN", "FROM_CONFIG"},
		BadConfig: json.RawMessage(`{"envv": {}}`),
		Dir:       t.TempDir(),
	}
}

// The implementation through the real gRPC glue, in this process.
func TestConformance(t *testing.T) {
	sharedtest.Run(t, sharedtest.Serve(t, minimal{}), conformanceConfig(t))
}

// The built binary, started as ptyhost starts it.
func TestConformanceBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "ptyhost-plugin-minimal")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := conformanceConfig(t) // before Launch, which passes on FROM_PLUGIN
	sharedtest.Run(t, sharedtest.Launch(t, bin), cfg)
}

func spawnRequest(id, config string, argv ...string) shared.SpawnRequest {
	return shared.SpawnRequest{
		SessionID: id, EnvironmentType: "MINIMAL", Config: json.RawMessage(config),
		Command: argv, Size: shared.Size{Cols: 80, Rows: 24},
	}
}

// The config's env reaches the session, beside TERM.
func TestConfigEnv(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	env := sharedtest.Serve(t, minimal{})
	p, err := env.Spawn(ctx, spawnRequest("env", `{"env": {"GREETING": "hello"}}`,
		"/bin/sh", "-c", `printf '[%s|%s]\n' "$GREETING" "$TERM"`))
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "[hello|xterm-256color]")
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v", st)
	}
}

// The variables of SpawnRequest.UnsetEnv (the session's unset_env, the
// server's --never-env) are not the session's, whether the plugin
// inherited them or the config or the session sets them.
func TestUnsetEnv(t *testing.T) {
	t.Setenv("CLAUDECODE", "1")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	env := sharedtest.Serve(t, minimal{})
	req := spawnRequest("unset", `{"env": {"SECRETX": "cfg", "KEPT": "cfg"}}`,
		"/bin/sh", "-c", `printf '[%s|%s|%s|%s]\n' "${CLAUDECODE-unset}" "${SECRETX-unset}" "${SESSIONX-unset}" "${KEPT-unset}"`)
	req.Env = map[string]string{"SESSIONX": "req"}
	req.UnsetEnv = []string{"CLAUDECODE", "SECRETX", "SESSIONX"}
	p, err := env.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Expect(ctx, "[unset|unset|unset|cfg]")
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v", st)
	}
}

// A program run without a shell finds the session's directory in PWD,
// not the plugin's, and no OLDPWD of the plugin's.
func TestChildPWD(t *testing.T) {
	t.Setenv("OLDPWD", "/plugin/before")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	env := sharedtest.Serve(t, minimal{})
	dir := t.TempDir()
	req := spawnRequest("pwd", `{}`, "/usr/bin/env")
	req.Dir = dir
	p, err := env.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	out := "\n" + strings.ReplaceAll(string(sharedtest.NewTerm(t, p).ReadAll(ctx)), "\r\n", "\n")
	if !strings.Contains(out, "\nPWD="+dir+"\n") {
		t.Errorf("env printed no PWD=%s:%s", dir, out)
	}
	if strings.Contains(out, "\nOLDPWD=") {
		t.Errorf("env printed the plugin's OLDPWD:%s", out)
	}
}

// A wrong config is refused with shared.ErrInvalidConfig, naming the field.
func TestConfigRefused(t *testing.T) {
	env := sharedtest.Serve(t, minimal{})
	for _, tt := range []struct{ name, config, err string }{
		{"unknown field", `{"envv": {}}`, `unknown field "envv"`},
		{"wrong type", `{"env": {"A": 1}}`, "env.A: cannot unmarshal number into string"},
		{"bad name", `{"env": {"A=B": "c"}}`, `env: bad variable name "A=B"`},
		{"trailing data", `{} {}`, "trailing data"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := env.Spawn(t.Context(), spawnRequest(tt.name, tt.config, "/bin/true"))
			if err == nil {
				p.Close()
				t.Fatalf("Spawn with %s succeeded", tt.config)
			}
			if !errors.Is(err, shared.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Spawn with %s: %v, want ErrInvalidConfig saying %q", tt.config, err, tt.err)
			}
		})
	}
}
