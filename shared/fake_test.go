package shared

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
)

// fakeEnv is an Environment whose behaviour the test sets.
type fakeEnv struct {
	info  func(context.Context) (Info, error)
	spawn func(context.Context, SpawnRequest) (PTY, error)
}

func (f *fakeEnv) Info(ctx context.Context) (Info, error) {
	if f.info == nil {
		return Info{Name: "fake", Version: "1", Types: []string{"FAKE"}}, nil
	}
	return f.info(ctx)
}

func (f *fakeEnv) Spawn(ctx context.Context, req SpawnRequest) (PTY, error) {
	return f.spawn(ctx, req)
}

// validatingEnv adds ConfigValidator to fakeEnv.
type validatingEnv struct {
	fakeEnv
	validate func(ctx context.Context, envType string, config json.RawMessage) error
}

func (v *validatingEnv) ValidateConfig(ctx context.Context, envType string, config json.RawMessage) error {
	return v.validate(ctx, envType, config)
}

// fakePTY is a PTY whose output the test writes to out and whose exit it
// sends on exit. Input, resizes, Kill and Close are recorded.
type fakePTY struct {
	outR *io.PipeReader
	out  *io.PipeWriter
	exit chan ExitStatus

	inputs  chan []byte // every Write's bytes
	resizes chan Size
	killed  chan struct{}
	closed  chan struct{}

	killOnce, closeOnce sync.Once
}

func newFakePTY() *fakePTY {
	r, w := io.Pipe()
	return &fakePTY{
		outR:    r,
		out:     w,
		exit:    make(chan ExitStatus, 1),
		inputs:  make(chan []byte, 1024),
		resizes: make(chan Size, 16),
		killed:  make(chan struct{}),
		closed:  make(chan struct{}),
	}
}

func (p *fakePTY) Read(b []byte) (int, error) { return p.outR.Read(b) }

func (p *fakePTY) Write(b []byte) (int, error) {
	p.inputs <- append([]byte(nil), b...)
	return len(b), nil
}

func (p *fakePTY) Resize(_ context.Context, size Size) error {
	p.resizes <- size
	return nil
}

func (p *fakePTY) Wait(ctx context.Context) (ExitStatus, error) {
	select {
	case st := <-p.exit:
		p.exit <- st
		return st, nil
	case <-ctx.Done():
		return ExitStatus{}, ctx.Err()
	}
}

// Kill ends the output and exits with SIGKILL's status.
func (p *fakePTY) Kill(context.Context) error {
	p.killOnce.Do(func() {
		close(p.killed)
		select {
		case p.exit <- ExitStatus{Code: 137, Signal: "SIGKILL"}:
		default:
		}
		p.out.Close()
	})
	return nil
}

func (p *fakePTY) Close() error {
	p.closeOnce.Do(func() {
		close(p.closed)
		p.out.CloseWithError(io.EOF)
	})
	return nil
}

// finish makes the fake exit with code after its output so far.
func (p *fakePTY) finish(code int) {
	p.exit <- ExitStatus{Code: code}
	p.out.Close()
}

// glue serves env over go-plugin's in-memory gRPC connection and returns
// the host's client and the plugin's server.
func glue(t testing.TB, env Environment) (*GRPCClient, *plugin.GRPCServer) {
	c, s, _ := gluePlugin(t, env)
	return c, s
}

// gluePlugin is glue that also returns the plugin, whose CloseAll does
// what the plugin process does before it exits (the cleanup calls it).
func gluePlugin(t testing.TB, env Environment) (*GRPCClient, *plugin.GRPCServer, *EnvironmentPlugin) {
	t.Helper()
	ep := &EnvironmentPlugin{Impl: env}
	client, server := testGRPCConn(t, map[string]plugin.Plugin{PluginName: ep})
	// Closing the client stops the server too (go-plugin's Shutdown RPC);
	// stopping it here as well would race inside go-plugin.
	t.Cleanup(func() {
		_ = client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ep.CloseAll(ctx)
	})
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*GRPCClient), server, ep
}

// spawnFake serves a fakeEnv whose Spawn returns the PTYs it sends on the
// returned channel.
func spawnFake(t *testing.T) (*GRPCClient, *plugin.GRPCServer, chan *fakePTY) {
	t.Helper()
	ptys := make(chan *fakePTY, 16)
	env := &fakeEnv{spawn: func(context.Context, SpawnRequest) (PTY, error) {
		p := newFakePTY()
		ptys <- p
		return p, nil
	}}
	c, s := glue(t, env)
	return c, s, ptys
}

// spawnOne spawns req on c and returns the session and the fake PTY the
// plugin made for it, which it sent on ptys.
func spawnOne(ctx context.Context, t *testing.T, c *GRPCClient, ptys <-chan *fakePTY, req SpawnRequest) (PTY, *fakePTY) {
	t.Helper()
	p, err := c.Spawn(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return p, receive(ctx, t, ptys, "spawn")
}

// receive waits for a value from ch until ctx ends.
func receive[T any](ctx context.Context, t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("no %s before the deadline", what)
		panic("unreachable")
	}
}

// closed waits for ch to be closed until ctx ends.
func waitClosed(ctx context.Context, t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatalf("%s did not happen before the deadline", what)
	}
}

var errTest = errors.New("test error")

// clientPath is one of the ways a session's bytes cross between host and
// plugin: its client asks for a byte channel, which the stream is released
// to (or, as hosts before releases_stream, kept beside), or keeps them on
// the stream.
type clientPath struct {
	name       string
	channel    bool
	keepStream bool
}

// of returns c as this path's client.
func (p clientPath) of(c *GRPCClient) *GRPCClient {
	if !p.channel {
		return c.StreamOnly().(*GRPCClient)
	}
	cc := *c
	cc.keepStreams = p.keepStream
	return &cc
}

// check fails t unless pty carries its bytes this path's way.
func (p clientPath) check(t *testing.T, pty PTY) {
	t.Helper()
	g := pty.(*grpcPTY)
	if got := g.ByteChannel(); got != p.channel {
		t.Fatalf("session on a byte channel: %v, want %v", got, p.channel)
	}
	if released := g.stream == nil; released != (p.channel && !p.keepStream) {
		t.Fatalf("session stream released: %v, want %v", released, p.channel && !p.keepStream)
	}
}

// forEachPath runs test once for each way bytes cross, as subtests.
func forEachPath(t *testing.T, test func(t *testing.T, path clientPath)) {
	for _, p := range []clientPath{{"channel", true, false}, {"channel-kept-stream", true, true}, {"stream", false, false}} {
		t.Run(p.name, func(t *testing.T) { test(t, p) })
	}
}
