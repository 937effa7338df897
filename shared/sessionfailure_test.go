package shared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// failingPTY is a fakePTY whose Read fails with readErr once its output
// is read, or whose Wait fails with waitErr.
type failingPTY struct {
	*fakePTY
	readErr, waitErr error
}

func (p *failingPTY) Read(b []byte) (int, error) {
	n, err := p.fakePTY.Read(b)
	if errors.Is(err, io.EOF) && p.readErr != nil {
		return n, p.readErr
	}
	return n, err
}

func (p *failingPTY) Wait(ctx context.Context) (ExitStatus, error) {
	if p.waitErr != nil {
		return ExitStatus{}, p.waitErr
	}
	return p.fakePTY.Wait(ctx)
}

// TestPluginSessionFailureIsNotACrash: a session whose PTY's Read or Wait
// fails in the plugin ends with the plugin's message (Read's error after
// every byte, and Wait's), on every path, and
// not as a plugin that died (ErrPluginExited, recorded plugin_crashed):
// the plugin is alive and said why.
func TestPluginSessionFailureIsNotACrash(t *testing.T) {
	for _, tt := range []struct {
		name             string
		readErr, waitErr error
	}{
		{"read", errors.New("backend stream broke"), nil},
		{"wait", nil, errors.New("lost the exit status")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			forEachPath(t, func(t *testing.T, path clientPath) {
				ctx := testContext(t)
				ptys := make(chan *fakePTY, 1)
				c, _ := glue(t, &fakeEnv{spawn: func(context.Context, SpawnRequest) (PTY, error) {
					p := newFakePTY()
					ptys <- p
					return &failingPTY{fakePTY: p, readErr: tt.readErr, waitErr: tt.waitErr}, nil
				}})
				pty, fake := spawnOne(ctx, t, path.of(c), ptys, spawnReq("s1"))
				path.check(t, pty)
				go func() {
					_, _ = fake.out.Write([]byte("last words"))
					fake.finish(0)
				}()
				got, err := io.ReadAll(pty)
				if string(got) != "last words" {
					t.Errorf("output %q, want every byte before the failure", got)
				}
				want := tt.readErr
				if want == nil {
					want = tt.waitErr
				}
				if err == nil || errors.Is(err, ErrPluginExited) || !strings.Contains(err.Error(), want.Error()) {
					t.Fatalf("session end: %v, want the plugin's %q, not ErrPluginExited", err, want)
				}
				if _, werr := pty.Wait(ctx); werr == nil || werr.Error() != err.Error() {
					t.Errorf("Wait: %v, want %v", werr, err)
				}
				_ = pty.Close()
			})
		})
	}
}

// TestSpawnNilPTY: a plugin whose Spawn returns neither a PTY nor an error
// gets the spawn refused with a clear error, instead of a panic that
// would take every session of the plugin down with it, that wraps
// ErrPluginProtocol on the host's side too.
func TestSpawnNilPTY(t *testing.T) {
	ctx := testContext(t)
	c, _ := glue(t, &fakeEnv{spawn: func(context.Context, SpawnRequest) (PTY, error) { return nil, nil }})
	_, err := c.Spawn(ctx, spawnReq("s1"))
	if err == nil || !strings.Contains(err.Error(), "no PTY") {
		t.Fatalf("Spawn: %v, want an error saying it returned no PTY", err)
	}
	// The plugin broke the protocol, and the host can tell.
	if !errors.Is(err, ErrPluginProtocol) || errors.Is(err, ErrPluginExited) {
		t.Errorf("Spawn: %v; errors.Is ErrPluginProtocol %v, want true (and not ErrPluginExited)", err, errors.Is(err, ErrPluginProtocol))
	}
	if n := strings.Count(err.Error(), ErrPluginProtocol.Error()); n != 1 {
		t.Errorf("Spawn: %q says %q %d times, want once", err, ErrPluginProtocol, n)
	}
	// The id is free again and the plugin alive: a spawn that works goes.
	ptys := make(chan *fakePTY, 1)
	c2, _ := glue(t, &fakeEnv{spawn: func(context.Context, SpawnRequest) (PTY, error) {
		p := newFakePTY()
		ptys <- p
		return p, nil
	}})
	pty, fake := spawnOne(ctx, t, c2, ptys, spawnReq("s1"))
	fake.finish(0)
	if _, err := io.ReadAll(pty); err != nil {
		t.Errorf("Read: %v", err)
	}
	_ = pty.Close()
}

// refusingPTY is a fakePTY whose Resize fails.
type refusingPTY struct{ *fakePTY }

func (p refusingPTY) Resize(context.Context, Size) error {
	return errors.New("cannot resize this backend")
}

// TestResizeRefusedIsLogged: a PTY that refuses a resize, which the host
// sent without waiting for an answer, gets a warning in the plugin's log
// (the host's log shows it under the plugin's name) rather than a debug
// line nobody sees — once per session — and the session goes on.
func TestResizeRefusedIsLogged(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		var logged e2etest.Buffer
		ptys := make(chan *fakePTY, 1)
		srv := NewGRPCServer(&fakeEnv{spawn: func(context.Context, SpawnRequest) (PTY, error) {
			p := newFakePTY()
			ptys <- p
			return refusingPTY{p}, nil
		}}, hclog.New(&hclog.LoggerOptions{Output: &logged, Level: hclog.Info}))
		c := glueServer(t, srv)
		pty, fake := spawnOne(ctx, t, path.of(c), ptys, spawnReq("s1"))
		for i := range 20 {
			if err := pty.Resize(ctx, Size{Cols: 100 + uint16(i%2), Rows: 30}); err != nil {
				t.Fatalf("Resize: %v", err)
			}
		}
		if _, err := pty.Write([]byte("after")); err != nil {
			t.Fatal(err)
		}
		if got := receive(ctx, t, fake.inputs, "input after the resize"); string(got) != "after" {
			t.Errorf("input %q", got)
		}
		out := logged.String()
		if !strings.Contains(out, "[WARN]") || !strings.Contains(out, "refused a resize") ||
			!strings.Contains(out, "cannot resize this backend") || !strings.Contains(out, "cols=100") {
			t.Errorf("plugin log %q, want a warning with the size and the PTY's error", out)
		}
		if n := strings.Count(out, "[WARN]"); n != 1 {
			t.Errorf("%d warnings for 20 refused resizes, want 1 (the log must not fill)", n)
		}
		_ = pty.Close()
	})
}

// TestSpawnOnAClosingConnection: a call made while the host's connection
// to the plugin is closing (a plugin being restarted or stopped) fails
// with ErrPluginExited, which the server answers as an unavailable
// environment (503), not with gRPC's "the client connection is closing"
// taken for the caller's cancel (a 502).
func TestSpawnOnAClosingConnection(t *testing.T) {
	ctx := testContext(t)
	client, server := testGRPCConn(t, map[string]plugin.Plugin{PluginName: &EnvironmentPlugin{Impl: &fakeEnv{}}})
	// The connection closed below carries no Shutdown: the server is
	// stopped here, or its socket would be left in TMPDIR.
	t.Cleanup(server.Stop)
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(*GRPCClient)
	if err := client.Conn.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = c.Spawn(ctx, spawnReq("s1"))
	if !errors.Is(err, ErrPluginExited) || errors.Is(err, context.Canceled) {
		t.Errorf("Spawn on a closed connection: %v, want ErrPluginExited", err)
	}
	if err != nil && strings.Contains(err.Error(), "grpc") {
		t.Errorf("Spawn on a closed connection: %q, shows gRPC's message", err)
	}
	if _, err := c.Info(ctx); !errors.Is(err, ErrPluginExited) {
		t.Errorf("Info on a closed connection: %v, want ErrPluginExited", err)
	}
}

// TestPluginsOwnCanceledIsNotAnExit: an adapter that passes on its own
// backend's gRPC Canceled (the plugin alive, its connection up) is not
// taken for a plugin that exited.
func TestPluginsOwnCanceledIsNotAnExit(t *testing.T) {
	ctx := testContext(t)
	nested := status.Error(codes.Canceled, "backend: grpc: the client connection is closing")
	c, _ := glue(t, &fakeEnv{
		info:  func(context.Context) (Info, error) { return Info{}, nested },
		spawn: func(context.Context, SpawnRequest) (PTY, error) { return nil, nested },
	})
	if _, err := c.Info(ctx); err == nil || errors.Is(err, ErrPluginExited) {
		t.Errorf("Info: %v, want the plugin's error, not ErrPluginExited", err)
	}
	if _, err := c.Spawn(ctx, spawnReq("s1")); err == nil || errors.Is(err, ErrPluginExited) {
		t.Errorf("Spawn: %v, want the plugin's error, not ErrPluginExited", err)
	}
}

// TestReadAfterCloseSaysClosed: a Read waiting while the host closes the
// session ends with "session closed" on every path, also when the
// plugin's answer to the Close (the stream's end) comes before Close's
// own cancel: neither a failure of the session nor a plugin that exited.
func TestReadAfterCloseSaysClosed(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		c, _, ptys := spawnFake(t)
		for i := range 20 {
			pty, _ := spawnOne(ctx, t, path.of(c), ptys, spawnReq(fmt.Sprintf("s%d", i)))
			read := make(chan error, 1)
			go func() {
				_, err := io.ReadAll(pty)
				read <- err
			}()
			_ = pty.Close()
			if err := receive(ctx, t, read, "Read's end"); !errors.Is(err, errSessionClosed) {
				t.Fatalf("Read after Close: %v, want session closed", err)
			}
		}
	})
}
