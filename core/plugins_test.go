package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ptyhost/ptyhost/internal/testbin"
	"github.com/ptyhost/ptyhost/shared"
)

// logRecords is a slog.Handler that keeps records, flattened to strings,
// and lets a test wait for one.
type logRecords struct {
	store *logStore
	attrs []slog.Attr
}

type logStore struct {
	mu sync.Mutex
	// mu protects the following.
	lines   []string
	changed chan struct{} // closed and replaced on every record
}

func newLogRecords() *logRecords {
	return &logRecords{store: &logStore{changed: make(chan struct{})}}
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "level=%s msg=%q", r.Level, r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	s := h.store
	s.mu.Lock()
	s.lines = append(s.lines, b.String())
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

func (h *logRecords) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logRecords{store: h.store, attrs: append(slices.Clone(h.attrs), attrs...)}
}

func (h *logRecords) WithGroup(string) slog.Handler { return h }

// wait returns the first line containing every one of parts, waiting for it
// until ctx ends.
func (h *logRecords) wait(ctx context.Context, t *testing.T, parts ...string) string {
	t.Helper()
	s := h.store
	for {
		s.mu.Lock()
		lines, changed := slices.Clone(s.lines), s.changed
		s.mu.Unlock()
		for _, l := range lines {
			if containsAll(l, parts) {
				return l
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("no log line with %q before the deadline; log:\n%s", parts, strings.Join(lines, "\n"))
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func pluginsContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// writeExecutable writes an executable file into dir.
func writeExecutable(t *testing.T, dir, name, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestLoadPlugins(t *testing.T) {
	ctx := pluginsContext(t)
	t.Setenv(shared.LogLevelEnv, "debug") // the plugin inherits it
	dir := testbin.PluginDir(t, "host")
	writeExecutable(t, dir, "ptyhost-plugin-broken", "#!/bin/sh\necho 'not a plugin'\n", 0o755)
	writeExecutable(t, dir, "ptyhost-plugin-notexec", "#!/bin/sh\n", 0o644)
	writeExecutable(t, dir, "README", "#!/bin/sh\n", 0o755)
	logs := newLogRecords()

	p, err := LoadPlugins(ctx, PluginOptions{Dir: dir, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	logs.wait(ctx, t, "plugin skipped", "plugin=ptyhost-plugin-broken")

	if got := p.Types(); !slices.Equal(got, []string{"HOST"}) {
		t.Errorf("Types() = %q, want [HOST]", got)
	}
	list := p.List()
	if len(list) != 2 {
		t.Fatalf("List() = %+v, want the broken and the host plugin", list)
	}
	if broken := list[0]; broken.Name != "ptyhost-plugin-broken" || broken.State != PluginFailed || broken.Error == "" {
		t.Errorf("List()[0] = %+v, want ptyhost-plugin-broken failed with an error", broken)
	}
	host := list[1]
	if host.Name != "host" || host.State != PluginRunning || host.Version == "" ||
		!slices.Equal(host.Types, []string{"HOST"}) || !slices.Contains(host.Capabilities, shared.CapResize) ||
		filepath.Base(host.Path) != "ptyhost-plugin-host" {
		t.Errorf("List()[1] = %+v, want the running host plugin", host)
	}

	if _, err := p.Environment("NOPE"); !errors.Is(err, ErrNoPlugin) {
		t.Errorf("Environment(NOPE): %v, want ErrNoPlugin", err)
	}
	env, err := p.Environment("HOST")
	if err != nil {
		t.Fatal(err)
	}
	// A session through the plugin; its debug log reaches our logger.
	pty, err := env.Spawn(ctx, shared.SpawnRequest{SessionID: "load-test", Command: []string{"/bin/true"}, Size: shared.Size{Cols: 80, Rows: 24}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, pty); err != nil {
		t.Errorf("reading the session: %v", err)
	}
	if err := pty.Close(); err != nil {
		t.Error(err)
	}
	logs.wait(ctx, t, "level=DEBUG", `msg="session started"`, "plugin=ptyhost-plugin-host", "session_id=load-test")

	p.Close()
	p.Close() // idempotent
	if st := p.List()[1].State; st != PluginExited {
		t.Errorf("state after Close = %s, want exited", st)
	}
	if _, err := p.Environment("HOST"); !errors.Is(err, shared.ErrPluginExited) {
		t.Errorf("Environment after Close: %v, want ErrPluginExited", err)
	}
}

func TestLoadPluginsDuplicateType(t *testing.T) {
	ctx := pluginsContext(t)
	dir := testbin.PluginDir(t, "host")
	bin, err := os.Readlink(filepath.Join(dir, "ptyhost-plugin-host"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(dir, "ptyhost-plugin-host-copy")); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPlugins(ctx, PluginOptions{Dir: dir})
	if err == nil {
		p.Close()
		t.Fatal("LoadPlugins succeeded with two plugins claiming HOST")
	}
	for _, want := range []string{`"HOST"`, "ptyhost-plugin-host ", "ptyhost-plugin-host-copy"} {
		if !strings.Contains(err.Error()+" ", want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

func TestLoadPluginsDirs(t *testing.T) {
	ctx := pluginsContext(t)
	p, err := LoadPlugins(ctx, PluginOptions{})
	if err != nil || len(p.Types()) != 0 || len(p.List()) != 0 {
		t.Errorf("LoadPlugins without a dir = %v, %v; want an empty set", p, err)
	}
	p.Close()
	if _, err := LoadPlugins(ctx, PluginOptions{Dir: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("LoadPlugins of a missing dir succeeded")
	}
}

// stubEnv is the smallest Environment, for StaticPlugins.
type stubEnv struct{ shared.Environment }

func TestStaticPlugins(t *testing.T) {
	a, b := &stubEnv{}, &stubEnv{}
	p := StaticPlugins(map[string]shared.Environment{"B": b, "A": a})
	defer p.Close()
	if got := p.Types(); !slices.Equal(got, []string{"A", "B"}) {
		t.Errorf("Types() = %q", got)
	}
	if env, err := p.Environment("B"); err != nil || env != b {
		t.Errorf("Environment(B) = %v, %v", env, err)
	}
	if _, err := p.Environment("C"); !errors.Is(err, ErrNoPlugin) {
		t.Errorf("Environment(C): %v, want ErrNoPlugin", err)
	}
	if list := p.List(); len(list) != 2 || list[0].Name != "A" || list[0].State != PluginStatic {
		t.Errorf("List() = %+v", list)
	}
}

func TestHCLogger(t *testing.T) {
	ctx := pluginsContext(t)
	logs := newLogRecords()
	var l hclog.Logger = newHCLogger(slog.New(logs).With("plugin", "p"), "")
	l = l.Named("stderr").With("k", 1)
	l.Warn("hello", "a", "b", "timestamp", "2020-01-01")
	l.Trace("fine")
	line := logs.wait(ctx, t, `msg="hello"`)
	for _, want := range []string{"level=WARN", "plugin=p", "logger=stderr", "k=1", "a=b"} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %s", line, want)
		}
	}
	if strings.Contains(line, "timestamp") {
		t.Errorf("log line %q keeps the plugin's timestamp", line)
	}
	logs.wait(ctx, t, "level=DEBUG-4", `msg="fine"`)
	if l.Named("sub").Name() != "stderr.sub" || l.GetLevel() != hclog.Trace || !l.IsTrace() {
		t.Errorf("Name %q, GetLevel %v", l.Named("sub").Name(), l.GetLevel())
	}

	info := newHCLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), "")
	if info.GetLevel() != hclog.Warn || info.IsInfo() {
		t.Errorf("GetLevel() = %v for a warn handler", info.GetLevel())
	}
}

func TestPluginEnvironHidesServerSettings(t *testing.T) {
	got := pluginEnviron([]string{
		"HOME=/root", "PTYHOST_TOKEN=secret", "PTYHOST_DB=postgres://u:p@h/db",
		"PTYHOST_PLUGIN_LOG_LEVEL=debug", "PATH=/bin",
	})
	want := []string{"HOME=/root", "PTYHOST_PLUGIN_LOG_LEVEL=debug", "PATH=/bin"}
	if !slices.Equal(got, want) {
		t.Errorf("pluginEnviron = %q, want %q", got, want)
	}
}
