package pluginhost

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

	"github.com/ptyhost/ptyhost/core"
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

// loadPlugins is Load for tests, returning once every plugin's
// first start has ended.
func loadPlugins(ctx context.Context, t *testing.T, opts Options) (*Plugins, error) {
	t.Helper()
	p, err := Load(ctx, opts)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.Started():
	case <-ctx.Done():
		p.Close()
		t.Fatalf("the plugins did not start before the deadline: %+v", p.List())
	}
	return p, nil
}

// writeExecutable writes an executable file into dir.
func writeExecutable(t *testing.T, dir, name, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func TestLoad(t *testing.T) {
	ctx := pluginsContext(t)
	t.Setenv(shared.LogLevelEnv, "debug") // the plugin inherits it
	dir := testbin.PluginDir(t, "host")
	writeExecutable(t, dir, "ptyhost-plugin-broken", "#!/bin/sh\necho 'not a plugin'\n", 0o755)
	writeExecutable(t, dir, "ptyhost-plugin-dies", "#!/bin/sh\necho 'starting' >&2\necho 'dies: no such backend' >&2\nexit 3\n", 0o755)
	writeExecutable(t, dir, "ptyhost-plugin-unnamed", "#!/bin/sh\necho 'never run'\n", 0o755)
	writeExecutable(t, dir, "ptyhost-plugin-notexec", "#!/bin/sh\n", 0o644)
	writeExecutable(t, dir, "README", "#!/bin/sh\n", 0o755)
	logs := newLogRecords()

	p, err := loadPlugins(ctx, t, Options{Dir: dir, Logger: slog.New(logs), Plugins: []Config{{Name: "broken"}, {Name: "dies"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	logs.wait(ctx, t, `msg="plugin failed"`, "plugin=broken")
	logs.wait(ctx, t, "level=INFO", "not named in the configuration", "plugin=unnamed")

	if got := p.Types(); !slices.Equal(got, []string{"HOST"}) {
		t.Errorf("Types() = %q, want [HOST]", got)
	}
	list := p.List()
	if len(list) != 3 {
		t.Fatalf("List() = %+v, want the broken, dying and host plugins", list)
	}
	if broken := list[0]; broken.Name != "broken" || broken.State != core.PluginFailed || broken.Reason == "" || broken.SHA256 == "" {
		t.Errorf("List()[0] = %+v, want broken failed with a reason and its sha256", broken)
	}
	// A plugin that exits at its start: how, and its own last words.
	logs.wait(ctx, t, `msg="plugin failed"`, "plugin=dies")
	if dies, _ := p.Plugin("dies"); dies.State != core.PluginFailed || !strings.Contains(dies.Reason, "exit status 3") ||
		!strings.Contains(dies.Reason, `starting\ndies: no such backend`) {
		t.Errorf("dies: %+v, want failed with its exit status and its stderr's end", dies)
	}
	host := list[2]
	if host.Name != "host" || host.State != core.PluginRunning || host.Version == "" || !host.Builtin ||
		!slices.Equal(host.Types, []string{"HOST"}) || !slices.Contains(host.Capabilities, shared.CapResize) ||
		filepath.Base(host.Path) != "ptyhost-plugin-host" || len(host.SHA256) != 64 || host.PID == 0 || host.Restarts != 0 {
		t.Errorf("List()[1] = %+v, want the running host plugin", host)
	}
	if want, _ := fileSHA256(filepath.Join(dir, "ptyhost-plugin-host")); host.SHA256 != want {
		t.Errorf("host sha256 = %s, want %s", host.SHA256, want)
	}

	if _, err := p.Environment("NOPE"); !errors.Is(err, core.ErrNoPlugin) {
		t.Errorf("Environment(NOPE): %v, want core.ErrNoPlugin", err)
	}
	env, err := p.Environment("HOST")
	if err != nil {
		t.Fatal(err)
	}
	// A session through the plugin; its debug log reaches our logger.
	pty, err := env.Spawn(ctx, shared.SpawnRequest{SessionID: "load-test", EnvironmentType: "HOST", Command: []string{"/bin/true"}, Size: shared.Size{Cols: 80, Rows: 24}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, pty); err != nil {
		t.Errorf("reading the session: %v", err)
	}
	if err := pty.Close(); err != nil {
		t.Error(err)
	}
	logs.wait(ctx, t, "level=DEBUG", `msg="session started"`, "plugin=host", "session_id=load-test")

	p.Close()
	p.Close() // idempotent
	if st := p.List()[2]; st.State != core.PluginStopped || st.PID != 0 {
		t.Errorf("after Close: %+v, want stopped", st)
	}
	if _, err := p.Environment("HOST"); !errors.Is(err, shared.ErrPluginExited) {
		t.Errorf("core.Environment after Close: %v, want ErrPluginExited", err)
	}
	if _, err := p.Restart(ctx, "host"); !errors.Is(err, shared.ErrUnavailable) {
		t.Errorf("Restart after Close: %v, want ErrUnavailable", err)
	}
}

// A third-party plugin claiming a built-in's type is refused, with a
// reason naming both, whichever starts first; the built-in serves the type.
func TestLoadDuplicateType(t *testing.T) {
	ctx := pluginsContext(t)
	dir := testbin.PluginDir(t, "host")
	bin, err := os.Readlink(filepath.Join(dir, "ptyhost-plugin-host"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(dir, "ptyhost-plugin-host-copy")); err != nil {
		t.Fatal(err)
	}
	p, err := loadPlugins(ctx, t, Options{Dir: dir, Plugins: []Config{{Name: "host-copy"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	list := p.List()
	if len(list) != 2 || (list[0].State == core.PluginRunning) == (list[1].State == core.PluginRunning) {
		t.Fatalf("List() = %+v, want one running and one refused", list)
	}
	refused := list[1] // by name: host, host-copy
	if refused.Name != "host-copy" || refused.State != core.PluginRefused {
		t.Errorf("%s: %s, want host-copy refused", refused.Name, refused.State)
	}
	for _, want := range []string{`"HOST"`, "built-in plugin", "ptyhost-plugin-host ", "ptyhost-plugin-host-copy"} {
		if !strings.Contains(refused.Reason+" ", want) {
			t.Errorf("reason %q does not mention %s", refused.Reason, want)
		}
	}
	if _, err := p.Environment("HOST"); err != nil {
		t.Errorf("Environment(HOST): %v", err)
	}
}

// A third-party plugin that declares a built-in plugin's type is refused
// even when it starts first, and the built-in serves the type once it
// runs: which plugin serves HOST does not depend on a race.
func TestBuiltinTypeIsTheBuiltins(t *testing.T) {
	ctx := pluginsContext(t)
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate") // not a plugin's name: Load ignores it
	// The built-in host, slow to start: it waits for the gate.
	writeExecutable(t, dir, ExecutablePrefix+"host", fmt.Sprintf("#!/bin/sh\nwhile [ ! -e %s ]; do %s 0.01; done\nexec %s -types HOST\n",
		gate, sleepPath(t), fakePluginBin(t)), 0o755)
	linkPlugin(t, dir, "squatter", fakePluginBin(t))
	p, err := Load(ctx, Options{Dir: dir, Plugins: []Config{{Name: "squatter", Args: []string{"-types", "HOST,SQUAT"}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	st := waitPlugin(ctx, t, p, "squatter", "the end of its start", func(st core.PluginStatus) bool {
		return st.State != core.PluginStarting
	})
	if st.State != core.PluginRefused || !containsAll(st.Reason, []string{`"HOST"`, "built-in plugin", ExecutablePrefix + "host", ExecutablePrefix + "squatter"}) {
		t.Errorf("squatter: %+v, want refused: HOST is the built-in host's", st)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if st := waitPlugin(ctx, t, p, "host", "the end of its start", func(st core.PluginStatus) bool {
		return st.State != core.PluginStarting
	}); st.State != core.PluginRunning {
		t.Fatalf("host: %+v, want running", st)
	}
	if got := p.Types(); !slices.Equal(got, []string{"HOST"}) {
		t.Errorf("Types() = %q, want [HOST]", got)
	}
}

func TestLoadDirs(t *testing.T) {
	ctx := pluginsContext(t)
	p, err := loadPlugins(ctx, t, Options{})
	if err != nil || len(p.Types()) != 0 || len(p.List()) != 0 {
		t.Errorf("Load without a dir = %v, %v; want an empty set", p, err)
	}
	p.Close()
	if _, err := Load(ctx, Options{Dir: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("Load of a missing dir succeeded")
	}
	if _, err := Load(ctx, Options{Plugins: []Config{{Name: "tmux"}}}); err == nil {
		t.Error("Load of a named plugin without a dir succeeded")
	}

	// A named plugin that is not there is listed as failed; the built-ins
	// that are not there are not listed at all.
	p, err = loadPlugins(ctx, t, Options{Dir: t.TempDir(), Plugins: []Config{{Name: "tmux"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	list := p.List()
	if len(list) != 1 || list[0].Name != "tmux" || list[0].State != core.PluginFailed || !strings.Contains(list[0].Reason, "ptyhost-plugin-tmux") {
		t.Errorf("List() = %+v, want tmux failed: not found", list)
	}
}

func TestOptionsValidate(t *testing.T) {
	pin := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		opts Options
		want string // "" when valid
	}{
		{"zero", Options{}, ""},
		{"named", Options{Dir: "/d", Plugins: []Config{{Name: "tmux", SHA256: pin, Env: map[string]string{"A": "b"}, Args: []string{"-x"}}}}, ""},
		{"upper-case pin", Options{Dir: "/d", Plugins: []Config{{Name: "tmux", SHA256: strings.ToUpper(pin)}}}, ""},
		{"empty name", Options{Dir: "/d", Plugins: []Config{{}}}, `plugin name ""`},
		{"name with a slash", Options{Dir: "/d", Plugins: []Config{{Name: "../x"}}}, `plugin name "../x"`},
		{"short pin", Options{Dir: "/d", Plugins: []Config{{Name: "tmux", SHA256: "9f86d0"}}}, "want 64 hex digits"},
		{"pin not hex", Options{Dir: "/d", Plugins: []Config{{Name: "tmux", SHA256: strings.Repeat("zz", 32)}}}, "want 64 hex digits"},
		{"bad env name", Options{Dir: "/d", Plugins: []Config{{Name: "tmux", Env: map[string]string{"A=B": "c"}}}}, `env name "A=B"`},
		{"twice", Options{Dir: "/d", Plugins: []Config{{Name: "tmux"}, {Name: "tmux"}}}, "configured twice"},
		{"no dir", Options{Plugins: []Config{{Name: "tmux"}}}, "Dir is required"},
		{"negative backoff", Options{RestartBackoff: -1}, "must not be negative"},
		{"negative orphan timeout", Options{OrphanTimeout: -time.Second}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.opts.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want string // "" when valid
	}{
		{"env and args", Config{Name: "host", Env: map[string]string{"FOO": "a b", "EMPTY": ""}, Args: []string{"-x", ""}}, ""},
		{"empty env name", Config{Name: "host", Env: map[string]string{"": "a"}}, `env name ""`},
		{"env name with =", Config{Name: "host", Env: map[string]string{"A=B": "c"}}, `env name "A=B"`},
		{"env name with NUL", Config{Name: "host", Env: map[string]string{"A\x00B": "c"}}, `env name "A\x00B"`},
		{"env value with NUL", Config{Name: "host", Env: map[string]string{"FOO": "a\x00b"}}, `plugin host: env FOO: its value contains NUL (at byte 1)`},
		{"arg with NUL", Config{Name: "ssh", Args: []string{"-v", "a\x00b"}}, `plugin ssh: args[1] "a\x00b" contains NUL`},
		{"log level", Config{Name: "tmux", Env: map[string]string{shared.LogLevelEnv: "Debug"}}, ""},
		{"empty log level", Config{Name: "tmux", Env: map[string]string{shared.LogLevelEnv: ""}}, ""},
		{"bogus log level", Config{Name: "tmux", Env: map[string]string{shared.LogLevelEnv: "bogus"}}, `plugin tmux: env PTYHOST_PLUGIN_LOG_LEVEL: "bogus" is not a log level: want trace, debug, info, warn, error or off`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
			if tt.want == "" {
				return
			}
			// Options.Validate, which Load runs, refuses it too.
			if err := (Options{Dir: "/d", Plugins: []Config{tt.c}}).Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Options.Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		n     int
		delay time.Duration
	}{
		{"first crash", 1, 100 * ms},
		{"second", 2, 200 * ms},
		{"fourth", 4, 800 * ms},
		{"capped", 20, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoff(100*ms, time.Second, tt.n); got != tt.delay {
				t.Errorf("backoff after crash %d = %v, want %v", tt.n, got, tt.delay)
			}
		})
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

func TestPluginEnviron(t *testing.T) {
	server := []string{"HOME=/root", "PTYHOST_TOKEN=secret", "PTYHOST_PLUGIN_LOG_LEVEL=debug", "PATH=/bin", "TMUX_TMPDIR=/tmp"}
	tests := []struct {
		name    string
		builtin bool
		env     map[string]string
		want    []string
	}{
		{"built-in", true, nil, []string{"HOME=/root", "PTYHOST_PLUGIN_LOG_LEVEL=debug", "PATH=/bin", "TMUX_TMPDIR=/tmp"}},
		{"built-in with env", true, map[string]string{"TMUX_TMPDIR": "/run"},
			[]string{"HOME=/root", "PTYHOST_PLUGIN_LOG_LEVEL=debug", "PATH=/bin", "TMUX_TMPDIR=/tmp", "TMUX_TMPDIR=/run"}},
		{"third-party", false, nil, []string{"PTYHOST_PLUGIN_LOG_LEVEL=debug"}},
		{"third-party with env", false, map[string]string{"B": "2", "A": "1"}, []string{"PTYHOST_PLUGIN_LOG_LEVEL=debug", "A=1", "B=2"}},
		{"third-party sets its log level", false, map[string]string{shared.LogLevelEnv: "warn"}, []string{"PTYHOST_PLUGIN_LOG_LEVEL=warn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Config{Name: "x", Env: tt.env}.environ(tt.builtin, server)
			if !slices.Equal(got, tt.want) {
				t.Errorf("environ = %q, want %q", got, tt.want)
			}
		})
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

// gatedStartAtHook loads plugin "gated", serving GATED, whose process
// waits for a gate before it execs the fake plugin, and sets *hook to
// open the gate at its first call and wait until the plugin is running:
// so the plugin is surely starting until the hook runs, and running after.
// It returns the plugins and the hook's calls.
func gatedStartAtHook(ctx context.Context, t *testing.T, hook *func()) (*Plugins, *int) {
	t.Helper()
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate") // not a plugin's name: Load ignores it
	writeExecutable(t, dir, ExecutablePrefix+"gated", fmt.Sprintf("#!/bin/sh\nwhile [ ! -e %s ]; do %s 0.01; done\nexec %s \"$@\"\n",
		gate, sleepPath(t), fakePluginBin(t)), 0o755)
	p, err := Load(ctx, Options{Dir: dir, Plugins: []Config{{Name: "gated", Args: []string{"-types", "GATED"}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	calls := new(int)
	*hook = func() {
		*calls++
		if *calls == 1 {
			if err := os.WriteFile(gate, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			st := waitPlugin(ctx, t, p, "gated", "the end of its start", func(st core.PluginStatus) bool {
				return st.State != core.PluginStarting
			})
			if st.State != core.PluginRunning {
				t.Fatalf("plugin gated did not start: %+v", st)
			}
		}
	}
	t.Cleanup(func() { *hook = func() {} })
	return p, calls
}

// WaitType does not return a stale error when the plugin that serves the
// type ends its start between its look at the environment and its look at
// the plugins' states (CI saw the default 'host' environment go missing
// this way).
func TestWaitTypeStartEndsBetweenLooks(t *testing.T) {
	ctx := pluginsContext(t)
	p, looked := gatedStartAtHook(ctx, t, &testHookWaitTypeLooked)
	if err := p.WaitType(ctx, "GATED"); err != nil {
		t.Fatalf("WaitType(GATED): %v", err)
	}
	if *looked != 1 {
		t.Fatalf("the hook ran %d times, want once", *looked)
	}
}

// Environment does not answer "no plugin" when the plugin that serves the
// type ends its start between its look at the types served and its look at
// the plugins still starting.
func TestEnvironmentStartEndsBetweenLooks(t *testing.T) {
	ctx := pluginsContext(t)
	p, looked := gatedStartAtHook(ctx, t, &testHookEnvironmentLooked)
	if _, err := p.Environment("GATED"); err != nil {
		t.Fatalf("Environment(GATED): %v", err)
	}
	if *looked != 1 {
		t.Fatalf("the hook ran %d times, want once", *looked)
	}
}
