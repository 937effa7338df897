package sharedtest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ptyhost/ptyhost/shared"
)

// largeOutput is the size of the large_output case.
const largeOutput = 1 << 20

// cases is the conformance table, run in this order (in parallel).
var cases = []testCase{
	{"info", testInfo},
	{"echo", testEcho},
	{"input", testInput},
	{"initial_size", testInitialSize},
	{"resize", testResize},
	{"exit_code", testExitCode},
	{"signal_exit", testSignalExit},
	{"large_output", testLargeOutput},
	{"utf8", testUTF8},
	{"kill", testKill},
	{"close", testClose},
	{"duplicate_id", testDuplicateID},
	{"missing_dir", testMissingDir},
	{"bad_config", testBadConfig},
	{"validate_config", testValidateConfig},
	{"health", testHealth},
}

func testInfo(_ context.Context, t *testing.T, h *harness) {
	if h.info.Name == "" || h.info.Version == "" {
		t.Errorf("Info name %q, version %q: want both set", h.info.Name, h.info.Version)
	}
	if !slices.Contains(h.info.Types, h.cfg.Type) {
		t.Errorf("Info types %q do not include %q", h.info.Types, h.cfg.Type)
	}
	for _, c := range h.info.Capabilities {
		if c == "" {
			t.Errorf("Info capabilities %q contain an empty name", h.info.Capabilities)
		}
	}
}

func testEcho(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, `printf 'ptyhost-%s-%s\n' echo "$PTYHOST_SHAREDTEST"`)
	term.Expect(ctx, "ptyhost-echo-1")
	if st := term.Wait(ctx); st.Code != 0 || st.Signal != "" {
		t.Errorf("exit status %+v, want code 0", st)
	}
}

func testInput(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, `printf 'ready\n'; read line; printf 'got:%s\n' "$line"`)
	term.Expect(ctx, "ready")
	term.Write("hello\r")
	term.Expect(ctx, "got:hello")
	if st := term.Wait(ctx); st.Code != 0 {
		t.Errorf("exit status %+v, want code 0", st)
	}
}

func testInitialSize(ctx context.Context, t *testing.T, h *harness) {
	req := h.request(t, `stty size`)
	req.Size = shared.Size{Cols: 101, Rows: 37}
	term := h.spawn(ctx, t, req)
	term.Expect(ctx, "37 101")
}

func testResize(ctx context.Context, t *testing.T, h *harness) {
	if !h.has(shared.CapResize) {
		t.Skip("no resize capability")
	}
	term := h.run(ctx, t, `printf 'ready\n'; read x; stty size`)
	term.Expect(ctx, "ready")
	if err := term.PTY.Resize(ctx, shared.Size{Cols: 132, Rows: 50}); err != nil {
		t.Fatalf("Resize: %v", err)
	}
	// Input is applied after the resize sent before it.
	term.Write("\r")
	term.Expect(ctx, "50 132")
}

func testExitCode(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, `exit 7`)
	if st := term.Wait(ctx); st.Code != 7 || st.Signal != "" {
		t.Errorf("exit status %+v, want code 7", st)
	}
}

func testSignalExit(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, `kill -TERM $$`)
	if st := term.Wait(ctx); st.Code != 128+15 || st.Signal != "SIGTERM" {
		t.Errorf("exit status %+v, want code 143 and SIGTERM", st)
	}
}

func testLargeOutput(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, `head -c 1048576 /dev/zero | tr '\0' a; exit 3`)
	out := term.ReadAll(ctx)
	if len(out) != largeOutput || bytes.Count(out, []byte("a")) != largeOutput {
		t.Errorf("got %d bytes (%d of them 'a') before EOF, want %d 'a'", len(out), bytes.Count(out, []byte("a")), largeOutput)
	}
	if st, err := term.PTY.Wait(ctx); err != nil || st.Code != 3 {
		t.Errorf("Wait = %+v, %v; want code 3", st, err)
	}
}

func testUTF8(ctx context.Context, t *testing.T, h *harness) {
	// 🙂 is F0 9F 99 82: four bytes, which a reader splitting on byte
	// boundaries or decoding as text could damage.
	term := h.run(ctx, t, `printf '\360\237\231\202 \303\251t\303\251\n'`)
	term.Expect(ctx, "🙂 été")
	term.Wait(ctx)
}

func testKill(ctx context.Context, t *testing.T, h *harness) {
	term := h.run(ctx, t, `printf 'ready\n'; sleep 1000`)
	term.Expect(ctx, "ready")
	if err := term.PTY.Kill(ctx); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if st := term.Wait(ctx); st.Code == 0 {
		t.Errorf("exit status %+v after Kill, want non-zero", st)
	}
}

func testClose(ctx context.Context, t *testing.T, h *harness) {
	req := h.request(t, `printf 'ready\n'; sleep 1000`)
	term := h.spawn(ctx, t, req)
	term.Expect(ctx, "ready")
	closed := make(chan error, 1)
	go func() { closed <- term.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Close did not return before the deadline")
	}
	term.Ended(ctx) // Close unblocks Read

	// The session id is free again.
	again := h.spawn(ctx, t, req)
	if err := again.Close(); err != nil {
		t.Errorf("Close of the respawned session: %v", err)
	}
}

func testDuplicateID(ctx context.Context, t *testing.T, h *harness) {
	req := h.request(t, `printf 'ready\n'; sleep 1000`)
	term := h.spawn(ctx, t, req)
	term.Expect(ctx, "ready")
	p, err := h.env.Spawn(ctx, req)
	if err == nil {
		_ = p.Close()
	}
	if !errors.Is(err, shared.ErrAlreadyExists) {
		t.Errorf("second Spawn of id %q: %v, want ErrAlreadyExists", req.SessionID, err)
	}
	if err := term.PTY.Kill(ctx); err != nil {
		t.Errorf("Kill: %v", err)
	}
	term.Wait(ctx)
}

func testMissingDir(ctx context.Context, t *testing.T, h *harness) {
	req := h.request(t, `true`)
	req.Dir = h.cfg.MissingDir
	expectSpawnError(ctx, t, h, req, shared.ErrInvalidArgument)
}

func testBadConfig(ctx context.Context, t *testing.T, h *harness) {
	if h.cfg.BadConfig == nil {
		t.Skip("no Config.BadConfig")
	}
	req := h.request(t, `true`)
	req.Config = h.cfg.BadConfig
	expectSpawnError(ctx, t, h, req, shared.ErrInvalidConfig)
}

func expectSpawnError(ctx context.Context, t *testing.T, h *harness, req shared.SpawnRequest, want error) {
	t.Helper()
	p, err := h.env.Spawn(ctx, req)
	if err == nil {
		_ = p.Close()
		t.Fatalf("Spawn succeeded, want an error wrapping %q", want)
	}
	if !errors.Is(err, want) {
		t.Errorf("Spawn: %q, want an error wrapping %q", err, want)
	}
}

func testValidateConfig(ctx context.Context, t *testing.T, h *harness) {
	v, ok := h.env.(shared.ConfigValidator)
	if !ok {
		t.Skip("environment does not implement shared.ConfigValidator")
	}
	err := v.ValidateConfig(ctx, h.cfg.Type, h.cfg.Config)
	if !h.has(shared.CapValidateConfig) {
		if !errors.Is(err, shared.ErrUnsupported) {
			t.Errorf("ValidateConfig without the capability: %v, want ErrUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Errorf("ValidateConfig(Config): %v", err)
	}
	if h.cfg.BadConfig != nil {
		if err := v.ValidateConfig(ctx, h.cfg.Type, h.cfg.BadConfig); !errors.Is(err, shared.ErrInvalidConfig) {
			t.Errorf("ValidateConfig(BadConfig): %v, want ErrInvalidConfig", err)
		}
	}
}

func testHealth(ctx context.Context, t *testing.T, h *harness) {
	c, ok := h.env.(shared.HealthChecker)
	if !ok {
		t.Skip("environment does not implement shared.HealthChecker")
	}
	err := c.Health(ctx, h.cfg.Type, h.cfg.Config)
	if !h.has(shared.CapHealth) {
		if !errors.Is(err, shared.ErrUnsupported) {
			t.Errorf("Health without the capability: %v, want ErrUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Errorf("Health(Config): %v", err)
	}
}
