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

func conformanceConfig(t *testing.T) sharedtest.Config {
	return sharedtest.Config{
		Config:    json.RawMessage(`{"env": {"FROM_CONFIG": "yes"}}`),
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
	sharedtest.Run(t, sharedtest.Launch(t, bin), conformanceConfig(t))
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
