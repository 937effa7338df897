package shared

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// eventually polls cond, boundedly, until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, testTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// orphanClock stands in for the orphan timer and the process exit of a
// GRPCServer.
type orphanClock struct {
	mu sync.Mutex
	// mu protects the following.
	timers []*orphanTimer
	exits  []int
}

// orphanTimer is one timer the server started.
type orphanTimer struct {
	d       time.Duration
	fire    func()
	stopped bool
}

// install makes srv use c instead of real time and os.Exit.
func (c *orphanClock) install(srv *GRPCServer) {
	srv.hold.afterFunc = func(d time.Duration, f func()) func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		tm := &orphanTimer{d: d, fire: f}
		c.timers = append(c.timers, tm)
		return func() bool {
			c.mu.Lock()
			defer c.mu.Unlock()
			was := !tm.stopped
			tm.stopped = true
			return was
		}
	}
	srv.hold.exit = func(code int) {
		c.mu.Lock()
		c.exits = append(c.exits, code)
		c.mu.Unlock()
	}
}

// timer returns the i-th timer started, waiting for it.
func (c *orphanClock) timer(t *testing.T, i int) *orphanTimer {
	t.Helper()
	var tm *orphanTimer
	eventually(t, fmt.Sprintf("orphan timer #%d", i+1), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.timers) > i {
			tm = c.timers[i]
		}
		return tm != nil
	})
	return tm
}

// exited returns the exit codes the server asked for so far.
func (c *orphanClock) exited() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.exits...)
}

// keeperFake serves a fakeEnv whose PTYs are sent on the returned channel
// through a server the test holds, whose orphan timer and exit are clock's.
// Every session left is closed at the end of the test.
func keeperFake(t *testing.T) (*GRPCClient, *GRPCServer, chan *fakePTY, *orphanClock) {
	t.Helper()
	srv, ptys := fakeServer()
	clock := &orphanClock{}
	clock.install(srv)
	c := glueServer(t, srv)
	return c, srv, ptys, clock
}

// fakeServer returns a server of a fakeEnv whose Spawn returns the PTYs
// it sends on the returned channel.
func fakeServer() (*GRPCServer, chan *fakePTY) {
	ptys := make(chan *fakePTY, 16)
	srv := NewGRPCServer(&fakeEnv{spawn: func(context.Context, SpawnRequest) (PTY, error) {
		p := newFakePTY()
		ptys <- p
		return p, nil
	}}, nil)
	return srv, ptys
}

// glueServer serves srv over go-plugin's gRPC connection, as glue does,
// and closes srv's sessions when the test ends.
func glueServer(t *testing.T, srv *GRPCServer) *GRPCClient {
	t.Helper()
	client, _ := testGRPCConn(t, map[string]plugin.Plugin{
		PluginName: &EnvironmentPlugin{server: srv},
	})
	t.Cleanup(func() {
		_ = client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		srv.CloseAll(ctx)
	})
	raw, err := client.Dispense(PluginName)
	if err != nil {
		t.Fatal(err)
	}
	return raw.(*GRPCClient)
}

// hold holds the plugin c reaches until the test ends.
func hold(ctx context.Context, t *testing.T, c *GRPCClient) func() {
	t.Helper()
	release, err := c.Hold(ctx, time.Hour)
	if err != nil {
		t.Fatalf("Hold: %v", err)
	}
	t.Cleanup(release)
	return release
}

// readN reads exactly n bytes from p.
func readN(t *testing.T, p PTY, n int) []byte {
	t.Helper()
	got := make([]byte, n)
	if _, err := io.ReadFull(p, got); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return got
}

// print makes the fake PTY print s; it returns once the session's reader
// has read it.
func (p *fakePTY) print(t *testing.T, s string) {
	t.Helper()
	if _, err := p.out.Write([]byte(s)); err != nil {
		t.Fatalf("fake output: %v", err)
	}
}

// kept returns the plugin's kept session id, failing if it has none.
func kept(ctx context.Context, t *testing.T, c *GRPCClient, id string) KeptSession {
	t.Helper()
	list, err := c.Sessions(ctx)
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	for _, k := range list {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("Sessions = %+v, without %q", list, id)
	panic("unreachable")
}

// A held plugin keeps a session whose stream ended without Close; what the
// session printed meanwhile is read by an Attach from the host's offset,
// with no gap and no duplicate, then live output and the exit.
func TestHeldSessionOutlivesItsStream(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		c, _, ptys, _ := keeperFake(t)
		c = path.of(c)
		hold(ctx, t, c)
		req := spawnReq("s1")
		req.EnvironmentID = "env1"
		p, fake := spawnOne(ctx, t, c, ptys, req)
		fake.print(t, "one ")
		if got := readN(t, p, 4); string(got) != "one " {
			t.Fatalf("read %q", got)
		}
		p.(Detacher).Detach()
		if _, err := p.Read(make([]byte, 1)); !errors.Is(err, ErrDetached) {
			t.Errorf("Read after Detach: %v, want ErrDetached", err)
		}
		if _, err := p.Write([]byte("x")); !errors.Is(err, ErrDetached) {
			t.Errorf("Write after Detach: %v, want ErrDetached", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("Close after Detach: %v", err)
		}
		eventually(t, "the session detached", func() bool { return !kept(ctx, t, c, "s1").Attached })
		// The reader goes on reading with no stream attached.
		fake.print(t, "two ")
		fake.print(t, "three ")
		select {
		case <-fake.killed:
			t.Fatal("the held session was killed when its stream ended")
		case <-fake.closed:
			t.Fatal("the held session was closed when its stream ended")
		default:
		}
		eventually(t, "the output kept", func() bool { return kept(ctx, t, c, "s1").EndOffset == 14 })
		k := kept(ctx, t, c, "s1")
		want := KeptSession{ID: "s1", EnvironmentID: "env1", EnvironmentType: "FAKE", StartOffset: 0, EndOffset: 14}
		if k.ID != want.ID || k.EnvironmentID != want.EnvironmentID || k.EnvironmentType != want.EnvironmentType ||
			k.StartOffset != 0 || k.EndOffset != 14 || k.Attached || k.Exit != nil {
			t.Errorf("kept %+v, want %+v", k, want)
		}

		again, start, err := c.Attach(ctx, "s1", 4)
		if err != nil {
			t.Fatalf("Attach: %v", err)
		}
		defer again.Close()
		if start != 4 {
			t.Errorf("Attach(4) starts at %d, want 4", start)
		}
		if got := readN(t, again, 10); string(got) != "two three " {
			t.Errorf("after the attach read %q, want %q", got, "two three ")
		}
		if !kept(ctx, t, c, "s1").Attached {
			t.Error("Sessions says the attached session is detached")
		}
		fake.print(t, "four")
		if got := readN(t, again, 4); string(got) != "four" {
			t.Errorf("live output %q, want four", got)
		}
		if _, err := again.Write([]byte("in")); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if in := receive(ctx, t, fake.inputs, "input"); string(in) != "in" {
			t.Errorf("input %q, want in", in)
		}
		fake.finish(3)
		if rest, err := io.ReadAll(again); err != nil || len(rest) != 0 {
			t.Errorf("ReadAll = %q, %v; want the end", rest, err)
		}
		if st, err := again.Wait(ctx); err != nil || st.Code != 3 {
			t.Errorf("Wait = %+v, %v; want code 3", st, err)
		}
	})
}

// An Attach from an offset older than the plugin kept starts at the oldest
// byte kept, and says so.
func TestAttachOlderThanKept(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		c, _, ptys, _ := keeperFake(t)
		c = path.of(c)
		hold(ctx, t, c)
		req := spawnReq("s1")
		req.ScrollbackBytes = 16
		req.OutputOffset = 1000
		p, fake := spawnOne(ctx, t, c, ptys, req)
		p.(Detacher).Detach()
		eventually(t, "the session detached", func() bool { return !kept(ctx, t, c, "s1").Attached })
		fake.print(t, "0123456789abcdefghijklmnopqrstuvwxyz")
		eventually(t, "the output kept", func() bool { return kept(ctx, t, c, "s1").EndOffset == 1036 })
		if k := kept(ctx, t, c, "s1"); k.StartOffset != 1020 || k.EndOffset != 1036 {
			t.Errorf("kept [%d, %d), want [1020, 1036)", k.StartOffset, k.EndOffset)
		}
		again, start, err := c.Attach(ctx, "s1", 1000)
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		if start != 1020 {
			t.Errorf("Attach(1000) starts at %d, want 1020", start)
		}
		if got := readN(t, again, 16); string(got) != "klmnopqrstuvwxyz" {
			t.Errorf("read %q, want the 16 bytes kept", got)
		}
	})
}

// Without a hold, a stream that ends without Close kills and releases its
// session, as before holds existed.
func TestUnheldDetachKills(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		c, srv, ptys, _ := keeperFake(t)
		c = path.of(c)
		p, fake := spawnOne(ctx, t, c, ptys, spawnReq("s1"))
		p.(Detacher).Detach()
		waitClosed(ctx, t, fake.killed, "kill")
		waitClosed(ctx, t, fake.closed, "close")
		eventually(t, "the id released", func() bool { return len(srv.readySessions()) == 0 })
		if _, _, err := c.Attach(ctx, "s1", 0); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("Attach to the released session: %v, want ErrSessionNotFound", err)
		}
	})
}

// When the last hold ends and no host comes back within the orphan
// timeout, the plugin hangs every session up and exits.
func TestOrphanTimeoutHangsUpAndExits(t *testing.T) {
	ctx := testContext(t)
	c, _, ptys, clock := keeperFake(t)
	release, err := c.Hold(ctx, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	second := hold(ctx, t, c)
	p, fake := spawnOne(ctx, t, c, ptys, spawnReq("s1"))
	p.(Detacher).Detach()
	release()
	second()
	tm := clock.timer(t, 0)
	if tm.d != time.Hour {
		t.Errorf("orphan timer of %v, want the latest hold's 1h", tm.d)
	}
	clock.mu.Lock()
	if len(clock.timers) != 1 {
		t.Errorf("%d orphan timers started, want 1 (at the last hold's end)", len(clock.timers))
	}
	clock.mu.Unlock()
	select {
	case <-fake.killed:
		t.Fatal("the session was killed before the orphan timeout")
	default:
	}
	tm.fire()
	waitClosed(ctx, t, fake.killed, "kill")
	waitClosed(ctx, t, fake.closed, "close")
	if got := clock.exited(); len(got) != 1 || got[0] != 0 {
		t.Errorf("exits %v, want one exit(0)", got)
	}
}

// Once the orphan timer has fired, the plugin is ending: a host that comes
// back is refused, and so is a spawn, which the hang-up under way would
// miss.
func TestNoHoldAfterTheOrphanTimerFired(t *testing.T) {
	ctx := testContext(t)
	c, _, _, clock := keeperFake(t)
	release := hold(ctx, t, c)
	release()
	clock.timer(t, 0).fire()
	if _, err := c.Hold(ctx, time.Minute); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Hold after the orphan timeout: %v, want ErrUnavailable", err)
	}
	if _, err := c.Spawn(ctx, spawnReq("late")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Spawn after the orphan timeout: %v, want ErrUnavailable", err)
	}
}

// A new hold stops the orphan timer; a timer that fires anyway does
// nothing.
func TestNewHoldStopsOrphanTimer(t *testing.T) {
	ctx := testContext(t)
	c, _, ptys, clock := keeperFake(t)
	release := hold(ctx, t, c)
	if _, err := c.Spawn(ctx, spawnReq("s1")); err != nil {
		t.Fatal(err)
	}
	fake := receive(ctx, t, ptys, "spawn")
	release()
	tm := clock.timer(t, 0)
	hold(ctx, t, c)
	clock.mu.Lock()
	stopped := tm.stopped
	clock.mu.Unlock()
	if !stopped {
		t.Error("a new hold did not stop the orphan timer")
	}
	tm.fire() // a timer that had already fired
	select {
	case <-fake.killed:
		t.Error("a stopped orphan timer killed the session")
	default:
	}
	if got := clock.exited(); len(got) != 0 {
		t.Errorf("a stopped orphan timer exited the plugin: %v", got)
	}
}

// Hold wants a positive orphan timeout, on both sides of the wire.
func TestHoldNeedsAnOrphanTimeout(t *testing.T) {
	ctx := testContext(t)
	c, _, _, _ := keeperFake(t)
	if _, err := c.Hold(ctx, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Hold(0): %v, want ErrInvalidArgument", err)
	}
	stream, err := c.client.Host(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&proto.HostRequest{OrphanTimeoutMs: 0}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(fromStatus(err), ErrInvalidArgument) {
		t.Errorf("Host with 0ms: %v, want ErrInvalidArgument", err)
	}
}

// A plugin built before holds existed answers Hold with ErrUnsupported.
func TestHoldOldPlugin(t *testing.T) {
	ctx := testContext(t)
	c := serveRaw(t, &struct {
		proto.UnimplementedEnvironmentServer
	}{})
	if _, err := c.Hold(ctx, time.Minute); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Hold: %v, want ErrUnsupported", err)
	}
}

// An Attach takes a session over from the stream serving it: that stream
// ends, the session does not.
func TestAttachTakesOver(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		c, _, ptys, _ := keeperFake(t)
		c = path.of(c)
		hold(ctx, t, c)
		first, fake := spawnOne(ctx, t, c, ptys, spawnReq("s1"))
		fake.print(t, "ab")
		readN(t, first, 2)

		second, start, err := c.Attach(ctx, "s1", 2)
		if err != nil {
			t.Fatal(err)
		}
		defer second.Close()
		if start != 2 {
			t.Errorf("Attach(2) starts at %d", start)
		}
		if _, err := io.ReadAll(first); !errors.Is(err, ErrPluginExited) {
			t.Errorf("the taken-over stream's Read: %v, want it to end with an error", err)
		}
		first.(Detacher).Detach()
		first.Close()
		fake.print(t, "cd")
		if got := readN(t, second, 2); string(got) != "cd" {
			t.Errorf("the new stream read %q, want cd", got)
		}
		select {
		case <-fake.killed:
			t.Error("the take-over killed the session")
		default:
		}
		if _, _, err := c.Attach(ctx, "nope", 0); !errors.Is(err, ErrSessionNotFound) {
			t.Errorf("Attach to an unknown id: %v, want ErrSessionNotFound", err)
		}
	})
}

// A session that exits while no stream serves it is listed with its exit
// status; an Attach then delivers the rest and the exit at once.
func TestSessionExitedWhileDetached(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		c, _, ptys, _ := keeperFake(t)
		c = path.of(c)
		hold(ctx, t, c)
		p, fake := spawnOne(ctx, t, c, ptys, spawnReq("s1"))
		p.(Detacher).Detach()
		eventually(t, "the session detached", func() bool { return !kept(ctx, t, c, "s1").Attached })
		fake.print(t, "last words")
		fake.exit <- ExitStatus{Code: 7, Signal: "SIGTERM"}
		fake.out.Close()
		eventually(t, "the exit listed", func() bool { return kept(ctx, t, c, "s1").Exit != nil })
		if k := kept(ctx, t, c, "s1"); *k.Exit != (ExitStatus{Code: 7, Signal: "SIGTERM"}) || k.EndOffset != 10 {
			t.Errorf("kept %+v (exit %+v), want code 7 SIGTERM after 10 bytes", k, *k.Exit)
		}
		again, _, err := c.Attach(ctx, "s1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := io.ReadAll(again); err != nil || string(out) != "last words" {
			t.Errorf("ReadAll = %q, %v", out, err)
		}
		if st, err := again.Wait(ctx); err != nil || st.Code != 7 {
			t.Errorf("Wait = %+v, %v", st, err)
		}
		if err := again.Close(); err != nil {
			t.Fatal(err)
		}
		waitClosed(ctx, t, fake.closed, "close")
		if list, err := c.Sessions(ctx); err != nil || len(list) != 0 {
			t.Errorf("Sessions after Close = %+v, %v; want none", list, err)
		}
	})
}

// A spawn the host gives up on before the Started frame leaves nothing
// behind, even in a held plugin: the host never learnt of the session.
func TestHeldSpawnAbandonedLeavesNothing(t *testing.T) {
	ctx := testContext(t)
	spawning := make(chan struct{})
	proceed := make(chan struct{})
	made := make(chan *fakePTY, 1)
	srv := NewGRPCServer(&fakeEnv{spawn: func(context.Context, SpawnRequest) (PTY, error) {
		close(spawning)
		<-proceed
		p := newFakePTY()
		made <- p
		return p, nil // a slow adapter that starts the session anyway
	}}, nil)
	(&orphanClock{}).install(srv)
	c := glueServer(t, srv)
	hold(ctx, t, c)
	spawnCtx, cancel := context.WithCancel(ctx)
	go func() {
		<-spawning
		cancel()
	}()
	if _, err := c.Spawn(spawnCtx, spawnReq("s1")); !errors.Is(err, context.Canceled) {
		t.Errorf("Spawn: %v, want context.Canceled", err)
	}
	close(proceed)
	fake := receive(ctx, t, made, "the late spawn")
	waitClosed(ctx, t, fake.killed, "kill")
	waitClosed(ctx, t, fake.closed, "close")
	eventually(t, "the id released", func() bool {
		list, err := c.Sessions(ctx)
		return err == nil && len(list) == 0 && len(srv.readySessions()) == 0
	})
}

// With a stream attached and the host not reading, the session's reader
// stops once the ring is full of unsent bytes: the PTY is not drained
// beyond the ring and what is in flight, so the program is slowed. Once
// the host reads, every byte arrives, in order.
func TestAttachedReaderStopsWhenTheHostDoesNot(t *testing.T) {
	ctx := testContext(t)
	ptys := make(chan *fakePTY, 1)
	srv := NewGRPCServer(&fakeEnv{spawn: func(context.Context, SpawnRequest) (PTY, error) {
		p := newFakePTY()
		ptys <- p
		return p, nil
	}}, nil)
	// Fixed flow-control windows: what is in flight is bounded by them.
	const window = 64 << 10
	c := serveRaw(t, srv, grpc.WithInitialWindowSize(window), grpc.WithInitialConnWindowSize(window))
	const scrollback = 32 << 10
	req := spawnReq("s1")
	req.ScrollbackBytes = scrollback
	p, fake := spawnOne(ctx, t, c, ptys, req)
	defer p.Close()
	sess, err := srv.lookup("s1")
	if err != nil {
		t.Fatal(err)
	}

	const total = 4 << 20
	data := make([]byte, total)
	for i := range data {
		data[i] = byte(i % 251)
	}
	var (
		mu      sync.Mutex
		written int
	)
	go func() {
		for off := 0; off < total; off += 4 << 10 {
			if _, err := fake.out.Write(data[off : off+4<<10]); err != nil {
				return
			}
			mu.Lock()
			written = off + 4<<10
			mu.Unlock()
		}
		fake.finish(0)
	}()
	waitFull(t, sess.out)
	mu.Lock()
	drained := written
	mu.Unlock()
	sess.out.mu.Lock()
	sent, read := sess.out.att.cursor, sess.out.bytes.End()
	sess.out.mu.Unlock()
	// In flight: the stream's window, gRPC's write quota, a frame being
	// sent, with room.
	const inFlight = 2*window + 2*MaxFrameSize + 64<<10
	if sent > inFlight || read-sent > scrollback || int64(drained) > read+MaxFrameSize || drained >= total {
		t.Errorf("the PTY was drained of %d bytes (%d read into the ring, %d of them sent) with the host not reading; "+
			"want at most %d kept + %d in flight", drained, read, sent, scrollback, inFlight)
	}
	got, err := io.ReadAll(p)
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("received %d bytes, sent %d: not equal", len(got), len(data))
	}
}

// serveRaw serves srv over plain gRPC on a unix socket, with the client's
// dial options opts, and returns a client for it.
func serveRaw(t *testing.T, srv proto.EnvironmentServer, opts ...grpc.DialOption) *GRPCClient {
	t.Helper()
	lis, err := net.Listen("unix", t.TempDir()+"/plugin.sock")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	proto.RegisterEnvironmentServer(s, srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = s.Serve(lis)
	}()
	conn, err := grpc.NewClient("unix://"+lis.Addr().String(),
		append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	pluginCtx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		_ = conn.Close()
		if g, ok := srv.(*GRPCServer); ok {
			ctx, cancelClose := context.WithTimeout(context.Background(), testTimeout)
			g.CloseAll(ctx)
			cancelClose()
		}
		s.Stop()
		<-served
		cancel()
	})
	return NewGRPCClient(pluginCtx, conn)
}
