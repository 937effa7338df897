package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// directOn returns a Docker whose direct terminal can be tried on fe: its
// pty-init is a file of this machine (the fake engine runs nothing), its
// handoff sockets in a short directory.
func directOn(t *testing.T, fe *fakeEngine) *Docker {
	t.Helper()
	e := New(nil)
	t.Cleanup(e.Close)
	e.initBinary = func() (string, error) { return "/opt/ptyhost/ptyhost-plugin-docker", nil }
	// Not t.TempDir: a socket's path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "rd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e.runDir = dir
	return e
}

// engineConfig is a config running an image on fe, with extra fields.
func engineConfig(fe *fakeEngine, extra map[string]any) json.RawMessage {
	cfg := map[string]any{"image": "debian:12", "host": fe.host}
	for k, v := range extra {
		cfg[k] = v
	}
	b, _ := json.Marshal(cfg)
	return b
}

// blamed returns the failure remembered against the direct terminal on
// fe's daemon, or nil.
func blamed(t *testing.T, e *Docker, fe *fakeEngine) error {
	t.Helper()
	d, err := e.daemons.get(fe.host)
	if err != nil {
		t.Fatal(err)
	}
	return d.noDirect(time.Now())
}

// A create or a start that fails for the session's config — a network
// that does not exist (the daemon's 404 at create), a user the image
// lacks (its 500 at start, which the runtime's message shows is the
// config's) — fails the session with the daemon's error, a 400, whether
// the direct terminal was named or is the default, without a second try
// on the daemon's terminal; it leaves no container, and the daemon's
// sessions go on trying the direct terminal.
func TestConfigErrorIsNotTheDirectTerminals(t *testing.T) {
	tests := []struct {
		name        string
		terminal    string
		createFail  func(fakeCreateRequest) (int, string)
		startFail   func(fakeCreateRequest) (int, string)
		want        string
		wantInvalid bool // a 400
		created     int  // containers created (and removed)
	}{
		{"no such network, default", "", noSuchNetwork, nil, "network nosuchnet not found", true, 0},
		{"no such network, direct", TerminalDirect, noSuchNetwork, nil, "network nosuchnet not found", true, 0},
		{"no such user, default", "", nil, noSuchUser, "unable to find user nosuch", true, 1},
		{"no such user, direct", TerminalDirect, nil, noSuchUser, "unable to find user nosuch", true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe := startFakeEngine(t, func(fe *fakeEngine) { fe.createFail, fe.startFail = tt.createFail, tt.startFail })
			e := directOn(t, fe)
			ctx := testContext(t, 30*time.Second)
			cfg := engineConfig(fe, map[string]any{"terminal": tt.terminal, "network": "nosuchnet", "user": "nosuch"})
			_, err := e.Spawn(ctx, request("blame", cfg))
			invalid := errors.Is(err, shared.ErrInvalidConfig) || errors.Is(err, shared.ErrInvalidArgument)
			switch {
			case err == nil:
				t.Fatal("Spawn succeeded")
			case !strings.Contains(err.Error(), tt.want) || invalid != tt.wantInvalid:
				t.Errorf("Spawn: %v (a 400: %v); want the daemon's %q (a 400: %v)", err, invalid, tt.want, tt.wantInvalid)
			case errors.Is(err, shared.ErrUnavailable) || errors.Is(err, errDirectFailed):
				t.Errorf("Spawn: %v; the direct terminal is not at fault", err)
			}
			if why := blamed(t, e, fe); why != nil {
				t.Errorf("the daemon is taken to lack a direct terminal: %v", why)
			}
			if n := len(fe.containerIDs()); n != tt.created {
				t.Errorf("%d containers created, want %d", n, tt.created)
			}
			if left := fe.left(); len(left) != 0 {
				t.Errorf("containers left: %v", left)
			}
		})
	}
}

// Failures that are the direct terminal's own — the daemon names its
// files, or the daemon's terminal works where it did not — keep their
// behaviour: by default the session runs on the daemon's terminal and the
// daemon's sessions skip the direct terminal for a while; named, the
// direct terminal is a 503 saying why. Its container is removed either
// way.
func TestDirectTerminalsOwnFailure(t *testing.T) {
	tests := []struct {
		name                  string
		createFail, startFail func(fakeCreateRequest) (int, string)
		want                  string
	}{
		{"daemon cannot see the socket", directOnly(noBindSource), nil, "bind source path does not exist"},
		{"runtime cannot run pty-init", nil, directOnly(noInitExec), `exec: "/.ptyhost/init": permission denied`},
		{"unnamed, but the daemon's terminal works", nil, directOnly(runtimeFailure), "failed to create task"},
	}
	for _, tt := range tests {
		t.Run(tt.name+", default", func(t *testing.T) {
			fe := startFakeEngine(t, func(fe *fakeEngine) { fe.createFail, fe.startFail = tt.createFail, tt.startFail })
			e := directOn(t, fe)
			ctx := testContext(t, 30*time.Second)
			p, err := e.Spawn(ctx, request("own", engineConfig(fe, nil)))
			if err != nil {
				t.Fatalf("Spawn: %v; want the daemon's terminal", err)
			}
			ids := fe.containerIDs()
			if last := fe.request(ids[len(ids)-1]); last.direct() || !last.Tty {
				t.Errorf("the session's container is not on the daemon's terminal: entrypoint %q, tty %v", last.Entrypoint, last.Tty)
			}
			p.Close()
			why := blamed(t, e, fe)
			if !errors.Is(why, errDirectFailed) || !strings.Contains(why.Error(), tt.want) {
				t.Errorf("remembered against the direct terminal: %v; want its failure saying %q", why, tt.want)
			}
			if left := fe.left(); len(left) != 0 {
				t.Errorf("containers left: %v", left)
			}
		})
		if tt.name == "unnamed, but the daemon's terminal works" {
			continue // named, nothing tells it from the session's failure
		}
		t.Run(tt.name+", direct", func(t *testing.T) {
			fe := startFakeEngine(t, func(fe *fakeEngine) { fe.createFail, fe.startFail = tt.createFail, tt.startFail })
			e := directOn(t, fe)
			ctx := testContext(t, 30*time.Second)
			_, err := e.Spawn(ctx, request("own", engineConfig(fe, map[string]any{"terminal": TerminalDirect})))
			if !errors.Is(err, shared.ErrUnavailable) || errors.Is(err, shared.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Spawn: %v; want a 503 saying %q", err, tt.want)
			}
			if left := fe.left(); len(left) != 0 {
				t.Errorf("containers left: %v", left)
			}
		})
	}
}

// fault blames the direct terminal only for what names its files; the
// daemon's outage and a context that ended blame nothing, and a request
// the daemon calls invalid is the session's.
func TestDirectFault(t *testing.T) {
	m := &initMounts{binary: "/opt/ptyhost/plugin", socket: "/tmp/ptyhost-pty-1.2-3/pty.sock"}
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		// want: "direct" (errDirectFailed), "unproven", or "session"
		// (err itself).
		want string
	}{
		{"context ended", ended, errors.New(`exec: "/.ptyhost/init": permission denied`), "session"},
		{"daemon unreachable", t.Context(), fmt.Errorf("%w: docker daemon at unix:///d.sock: connection refused", shared.ErrUnavailable), "session"},
		{"pty-init named", t.Context(), errors.New(`exec: "/.ptyhost/init": exec format error`), "direct"},
		{"socket named in the container", t.Context(), errors.New(`error mounting "x" to rootfs at "/.ptyhost/pty.sock": permission denied`), "direct"},
		{"socket named on this machine", t.Context(), fmt.Errorf("%w: bind source path does not exist: /tmp/ptyhost-pty-1.2-3/pty.sock", shared.ErrInvalidArgument), "direct"},
		{"binary named", t.Context(), errors.New("stat /opt/ptyhost/plugin: permission denied"), "direct"},
		{"invalid request", t.Context(), fmt.Errorf("%w: invalid port", shared.ErrInvalidArgument), "session"},
		{"missing network", t.Context(), fmt.Errorf("%w: network x not found", shared.ErrInvalidConfig), "session"},
		{"names nothing", t.Context(), errors.New("unable to find user nosuch"), "unproven"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := m.fault(tt.ctx, tt.err)
			var u *unprovenError
			switch {
			case tt.want == "direct" && (!errors.Is(got, errDirectFailed) || errors.Is(got, shared.ErrInvalidArgument)):
				t.Errorf("fault = %v; want errDirectFailed without the daemon's classification", got)
			case tt.want == "unproven" && !errors.As(got, &u):
				t.Errorf("fault = %v; want an unprovenError", got)
			case tt.want == "session" && got != tt.err:
				t.Errorf("fault = %v; want %v itself", got, tt.err)
			}
		})
	}
}
