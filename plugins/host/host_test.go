package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/pluginhost"
	"github.com/ptyhost/ptyhost/internal/leakcheck"
	"github.com/ptyhost/ptyhost/internal/testbin"
	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/sharedtest"
)

func TestMain(m *testing.M) {
	wrapMain()
	leakcheck.Main(m)
}

// loadPlugins starts the real plugin binary through pluginhost.Load (a
// separate process over go-plugin with AutoMTLS) and waits until it serves
// HOST; the test's cleanup stops it.
func loadPlugins(t testing.TB) *pluginhost.Plugins {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	plugins, err := pluginhost.Load(ctx, pluginhost.Options{Dir: testbin.PluginDir(t, "host"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(plugins.Close)
	if err := plugins.WaitType(ctx, EnvironmentType); err != nil {
		t.Fatal(err)
	}
	return plugins
}

// loadHost returns the HOST environment of a freshly started plugin.
func loadHost(t testing.TB) shared.Environment {
	t.Helper()
	env, err := loadPlugins(t).Environment(EnvironmentType)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func conformanceConfig(t *testing.T) sharedtest.Config {
	return sharedtest.Config{
		Config:    json.RawMessage(`{"shell": "/bin/sh", "env": {"FROM_CONFIG": "yes"}}`),
		BadConfig: json.RawMessage(`{"shel": "/bin/sh"}`),
		Dir:       t.TempDir(),
	}
}

func TestConformance(t *testing.T) {
	sharedtest.Run(t, loadHost(t), conformanceConfig(t))
}

// The implementation without the glue passes too, but for the id
// bookkeeping, which is the glue's.
func TestConformanceInProcess(t *testing.T) {
	cfg := conformanceConfig(t)
	cfg.Skip = map[string]string{"duplicate_id": "session ids are the gRPC server's business"}
	sharedtest.Run(t, New(nil), cfg)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func request(id string, argv ...string) shared.SpawnRequest {
	return shared.SpawnRequest{
		SessionID:       id,
		EnvironmentType: EnvironmentType,
		Command:         argv,
		Size:            shared.Size{Cols: 80, Rows: 24},
	}
}

func TestSpawnErrors(t *testing.T) {
	env := loadHost(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		edit    func(*shared.SpawnRequest)
		want    error
		message string
	}{
		{"missing dir", func(r *shared.SpawnRequest) { r.Dir = "/nonexistent/dir" }, shared.ErrInvalidArgument, `working directory "/nonexistent/dir" does not exist`},
		{"dir is a file", func(r *shared.SpawnRequest) { r.Dir = file }, shared.ErrInvalidArgument, "is not a directory"},
		{"relative dir", func(r *shared.SpawnRequest) { r.Dir = "tmp" }, shared.ErrInvalidArgument, "not an absolute path"},
		{"unknown config field", func(r *shared.SpawnRequest) { r.Config = json.RawMessage(`{"shel": "/bin/sh"}`) }, shared.ErrInvalidConfig, `unknown field "shel"`},
		{"config not an object", func(r *shared.SpawnRequest) { r.Config = json.RawMessage(`[1]`) }, shared.ErrInvalidConfig, "cannot unmarshal"},
		{"missing shell", func(r *shared.SpawnRequest) { r.Config = json.RawMessage(`{"shell": "/no/such/shell"}`) }, shared.ErrInvalidConfig, "/no/such/shell"},
		{"bad env name", func(r *shared.SpawnRequest) { r.Env = map[string]string{"A=B": "c"} }, shared.ErrInvalidArgument, "bad variable name"},
		{"missing command", func(r *shared.SpawnRequest) { r.Command = []string{"/no/such/command"} }, shared.ErrInvalidArgument, "/no/such/command"},
		{"wrong type", func(r *shared.SpawnRequest) { r.EnvironmentType = "DOCKER" }, shared.ErrInvalidArgument, `"DOCKER"`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			req := request(fmt.Sprintf("spawn-error-%d", i), "/bin/true")
			tt.edit(&req)
			p, err := env.Spawn(ctx, req)
			if err == nil {
				p.Close()
				t.Fatal("Spawn succeeded")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Spawn: %q, want an error wrapping %q that mentions %q", err, tt.want, tt.message)
			}
			if strings.Contains(err.Error(), "rpc error") {
				t.Errorf("Spawn error %q carries gRPC decoration", err)
			}
		})
	}
}

func TestValidateConfig(t *testing.T) {
	ctx := testContext(t)
	v, ok := loadHost(t).(shared.ConfigValidator)
	if !ok {
		t.Fatal("the plugin client does not implement shared.ConfigValidator")
	}
	tests := []struct {
		config string
		want   error
	}{
		{``, nil},
		{`null`, nil},
		{`{}`, nil},
		{`{"shell": "/bin/sh", "env": {"A": "b"}}`, nil},
		{`{"shel": "/bin/sh"}`, shared.ErrInvalidConfig},
		{`{"env": {"": "x"}}`, shared.ErrInvalidConfig},
		{`{} {}`, shared.ErrInvalidConfig},
		{`{"env": ["A=b"]}`, shared.ErrInvalidConfig},
	}
	for _, tt := range tests {
		err := v.ValidateConfig(ctx, EnvironmentType, json.RawMessage(tt.config))
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("ValidateConfig(%s) = %v, want %v", tt.config, err, tt.want)
		}
	}
}

// The child's environment: TERM, the config's and the session's variables,
// and none of the plugin's own; the default directory is the home.
func TestChildEnvironment(t *testing.T) {
	ctx := testContext(t)
	env := loadHost(t)
	req := request("env", "/bin/sh", "-c",
		`printf '[%s|%s|%s|%s|%s]\n' "$TERM" "$FROM_CONFIG" "$FROM_SESSION" "${PTYHOST_PLUGIN-unset}" "$PWD"`)
	req.Config = json.RawMessage(`{"env": {"FROM_CONFIG": "c", "FROM_SESSION": "overridden"}}`)
	req.Env = map[string]string{"FROM_SESSION": "s"}
	p, err := env.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip("no home directory")
	}
	term.Expect(ctx, fmt.Sprintf("[xterm-256color|c|s|unset|%s]", home))
}

// With no command, the session runs the configured shell as argv [shell].
func TestDefaultShell(t *testing.T) {
	ctx := testContext(t)
	req := request("shell")
	req.Config = json.RawMessage(`{"shell": "/bin/sh"}`)
	req.Dir = t.TempDir()
	p, err := loadHost(t).Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	term := sharedtest.NewTerm(t, p)
	term.Write("printf 'shell:%s:\\n' \"$0\"; exit 3\r")
	term.Expect(ctx, "shell:/bin/sh:")
	if st := term.Wait(ctx); st.Code != 3 {
		t.Errorf("exit status %+v, want 3", st)
	}
}

// Every byte a child writes right before it exits arrives, unchanged: raw
// mode passes binary through, and the master is read until EIO.
func TestQuickExitOutputArrivesWhole(t *testing.T) {
	ctx := testContext(t)
	env := loadHost(t)
	want := make([]byte, 1<<20)
	rand.Read(want)
	file := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(file, want, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p, err := env.Spawn(ctx, request(fmt.Sprintf("quick-%d", i), "/bin/sh", "-c", `stty raw -echo && exec cat "$1"`, "sh", file))
		if err != nil {
			t.Fatal(err)
		}
		term := sharedtest.NewTerm(t, p)
		got := term.ReadAll(ctx)
		if !bytes.Equal(got, want) {
			t.Fatalf("run %d: got %d bytes, want the file's %d bytes unchanged", i, len(got), len(want))
		}
		if st := term.Wait(ctx); st.Code != 0 {
			t.Errorf("exit status %+v", st)
		}
	}
}

// A program run without a shell finds its own directory in PWD, not the
// server's, and no OLDPWD of the server's (a shell sets PWD itself, so
// TestChildEnvironment cannot tell).
func TestChildPWD(t *testing.T) {
	t.Setenv("OLDPWD", "/server/before")
	ctx := testContext(t)
	dir := t.TempDir()
	req := request("pwd", "/usr/bin/env")
	req.Dir = dir
	p, err := loadHost(t).Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	out := string(sharedtest.NewTerm(t, p).ReadAll(ctx))
	if !strings.Contains(out, "\nPWD="+dir+"\r\n") && !strings.HasPrefix(out, "PWD="+dir+"\r\n") {
		t.Errorf("env printed no PWD=%s:\n%s", dir, out)
	}
	if strings.Contains(out, "OLDPWD=") {
		t.Errorf("env printed the server's OLDPWD:\n%s", out)
	}
}
