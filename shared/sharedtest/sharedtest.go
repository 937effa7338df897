// Package sharedtest is the conformance harness for environment plugins.
//
// Run executes a table of named subtests against a shared.Environment:
// Info, spawning, input and output, terminal size, exit statuses, large and
// multibyte output, the variables SpawnRequest.UnsetEnv removes, Kill (of
// everything the session started, not only its leader), Close, and the
// errors for bad requests. Pass it the environment as the host will see
// it, through the real glue:
//
//   - Serve(t, impl) serves an implementation through the gRPC glue inside
//     the test process, with no binary to build;
//   - Launch(t, path) starts a built plugin executable as a separate
//     process, with the handshake and AutoMTLS, as the server does.
//
// Neither needs ptyhost's server packages, so a third-party plugin's tests
// import only shared and sharedtest:
//
//	func TestConformance(t *testing.T) {
//		sharedtest.Run(t, sharedtest.Serve(t, myenv.New(nil)), sharedtest.Config{
//			BadConfig: json.RawMessage(`{"nope": 1}`),
//		})
//	}
//
// Scripts run in a POSIX shell; Config says how, and which cases do not
// apply to an environment (Config.Skip, with the reason). Term drives one
// PTY, for a plugin's own cases.
//
// Every wait has a deadline; nothing sleeps.
package sharedtest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// Config tells Run how to drive the environment under test. The zero value
// runs scripts with /bin/sh in the environment's default directory and
// type.
type Config struct {
	// Type is the environment type to spawn. Empty means the first type
	// Info reports.
	Type string
	// Config is the environment configuration used for every spawn.
	Config json.RawMessage
	// BadConfig is a configuration the environment must reject with
	// shared.ErrInvalidConfig. Nil skips the cases that need one.
	BadConfig json.RawMessage
	// Script returns the argv that runs a POSIX shell script in the
	// environment. Nil means []string{"/bin/sh", "-c", script}.
	Script func(script string) []string
	// Dir is an existing working directory; empty means the environment's
	// default.
	Dir string
	// MissingDir is a path that is not a directory in the environment.
	// Empty means "/nonexistent/ptyhost-sharedtest".
	MissingDir string
	// UnsetEnv names variables a session of the environment has without
	// the request setting them — inherited from the plugin, set by Config,
	// given by a remote login — which the unset_env case checks that
	// SpawnRequest.UnsetEnv removes too, beside one the request's Env
	// sets. Each must be in a session spawned without UnsetEnv, and be
	// letters, digits and '_'. Empty checks the request's Env only.
	UnsetEnv []string
	// Timeout bounds each case. Zero means 30s.
	Timeout time.Duration
	// Skip maps names of cases not to run to the reason.
	Skip map[string]string
}

// harness is Run's state, shared by the cases.
type harness struct {
	env  shared.Environment
	cfg  Config
	info shared.Info
	seq  atomic.Int64
	// channel is set when the environment is a plugin's client that asks
	// for byte channels.
	channel bool
}

// Run runs the conformance cases against env as parallel subtests of t.
// When env carries its sessions' bytes on byte channels where it can
// (shared.ByteChannels, as Serve's and Launch's environments do), every
// case runs twice, under byte_channel/ and under stream/ (its
// StreamOnly()), and on the first a case whose session got no channel
// fails. Config.Skip names a case without that prefix and skips it on
// both.
func Run(t *testing.T, env shared.Environment, cfg Config) {
	t.Helper()
	if cfg.Script == nil {
		cfg.Script = func(script string) []string { return []string{"/bin/sh", "-c", script} }
	}
	if cfg.MissingDir == "" {
		cfg.MissingDir = "/nonexistent/ptyhost-sharedtest"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(t.Context(), cfg.Timeout)
	defer cancel()
	info, err := env.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if cfg.Type == "" && len(info.Types) > 0 {
		cfg.Type = info.Types[0]
	}
	c, ok := env.(shared.ByteChannels)
	if !ok {
		runCases(t, &harness{env: env, cfg: cfg, info: info}, cases)
		return
	}
	// A plugin's sessions carry their bytes on a byte channel where
	// they can, else on their streams: every case runs both ways.
	t.Run("byte_channel", func(t *testing.T) {
		t.Parallel()
		runCases(t, &harness{env: env, cfg: cfg, info: info, channel: true}, cases)
	})
	t.Run("stream", func(t *testing.T) {
		t.Parallel()
		runCases(t, &harness{env: c.StreamOnly(), cfg: cfg, info: info}, cases)
	})
}

// runCases runs cs against h's environment as parallel subtests of t.
func runCases(t *testing.T, h *harness, cs []testCase) {
	cfg := h.cfg
	for _, c := range cs {
		t.Run(c.name, func(t *testing.T) {
			if reason, ok := cfg.Skip[c.name]; ok {
				t.Skip(reason)
			}
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), cfg.Timeout)
			defer cancel()
			c.run(ctx, t, h)
		})
	}
}

// testCase is one named conformance case.
type testCase struct {
	name string
	run  func(ctx context.Context, t *testing.T, h *harness)
}

// request returns a spawn request running script, with a fresh session id.
func (h *harness) request(t *testing.T, script string) shared.SpawnRequest {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return shared.SpawnRequest{
		SessionID:       fmt.Sprintf("sharedtest-%s-%d", name, h.seq.Add(1)),
		EnvironmentID:   "sharedtest",
		EnvironmentType: h.cfg.Type,
		Config:          h.cfg.Config,
		Dir:             h.cfg.Dir,
		Command:         h.cfg.Script(script),
		Env:             map[string]string{"PTYHOST_SHAREDTEST": "1"},
		Size:            shared.Size{Cols: 80, Rows: 24},
	}
}

// spawn spawns req and starts reading it; the test's cleanup closes it.
func (h *harness) spawn(ctx context.Context, t *testing.T, req shared.SpawnRequest) *Term {
	t.Helper()
	p, err := h.env.Spawn(ctx, req)
	if err != nil {
		t.Fatalf("Spawn %v: %v", req.Command, err)
	}
	if h.channel && !shared.UsesByteChannel(p) {
		t.Errorf("the session's bytes go on its stream, not on a byte channel")
	}
	return NewTerm(t, p)
}

// run spawns a script with the defaults.
func (h *harness) run(ctx context.Context, t *testing.T, script string) *Term {
	t.Helper()
	return h.spawn(ctx, t, h.request(t, script))
}

func (h *harness) has(capability string) bool {
	return slices.Contains(h.info.Capabilities, capability)
}
