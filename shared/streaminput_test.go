package shared

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	protobuf "google.golang.org/protobuf/proto"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// countedConn counts the bytes read from and written to a connection.
type countedConn struct {
	net.Conn
	read, written *atomic.Int64
}

func (c countedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read.Add(int64(n))
	return n, err
}

func (c countedConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

// countedListener counts the bytes its connections read and write.
type countedListener struct {
	net.Listener
	read, written atomic.Int64
}

func (l *countedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countedConn{Conn: c, read: &l.read, written: &l.written}, nil
}

// countedWire is a gRPC connection between a host and a plugin whose
// bytes are counted at both ends, with fixed flow control windows: no
// BDP pings, so the host writes nothing but what it sends. Once the
// plugin has read every byte the host wrote, every frame the host sent is
// in the plugin's gRPC buffers.
type countedWire struct {
	lis                   *countedListener
	hostRead, hostWritten atomic.Int64

	mu sync.Mutex
	// mu protects the following.
	hostConns []net.Conn
}

// settled reports whether the plugin read everything the host wrote.
func (w *countedWire) settled() bool {
	return w.lis.read.Load() == w.hostWritten.Load()
}

// kill closes the host's connections, as the end of a killed host's
// process does: the plugin reads what the host wrote before, then the
// end.
func (w *countedWire) kill() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.hostConns {
		c.Close()
	}
}

// serveCounted serves srv over a countedWire on a unix socket and returns
// a client for it.
func serveCounted(t *testing.T, srv proto.EnvironmentServer) (*GRPCClient, *countedWire) {
	t.Helper()
	l, err := net.Listen("unix", t.TempDir()+"/plugin.sock")
	if err != nil {
		t.Fatal(err)
	}
	w := &countedWire{lis: &countedListener{Listener: l}}
	// A window set is a fixed one: gRPC estimates none, with pings.
	const window = 1 << 20
	s := grpc.NewServer(grpc.InitialWindowSize(window), grpc.InitialConnWindowSize(window))
	proto.RegisterEnvironmentServer(s, srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = s.Serve(w.lis)
	}()
	conn, err := grpc.NewClient("passthrough:///plugin",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(window), grpc.WithInitialConnWindowSize(window),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "unix", l.Addr().String())
			if err != nil {
				return nil, err
			}
			w.mu.Lock()
			w.hostConns = append(w.hostConns, c)
			w.mu.Unlock()
			return countedConn{Conn: c, read: &w.hostRead, written: &w.hostWritten}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	pluginCtx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		_ = conn.Close()
		s.Stop()
		<-served
		cancel()
	})
	return NewGRPCClient(pluginCtx, conn), w
}

// lateReader is a plugin whose session stream takes the first frame, then
// receives nothing more until the stream's context ended (as a session's
// input pump that waits in a Write to a full terminal), and then counts
// the frames gRPC still hands over.
type lateReader struct {
	proto.UnimplementedEnvironmentServer
	first chan struct{}
	count chan int
}

func (s *lateReader) Session(stream proto.Environment_SessionServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	close(s.first)
	<-stream.Context().Done()
	n := 0
	for {
		if _, err := stream.Recv(); err != nil {
			s.count <- n
			return err
		}
		n++
	}
}

// Why a session on the stream path loses the input frames its host sent
// just before it went away (docs/plugins.md), where one on a byte channel
// does not: the frames are in the plugin's gRPC buffers, but once the
// stream's context ended (the host's connection closed, or it reset the
// stream) grpc-go's server-side Recv picks at random between the next of
// them and the context's error, which it then keeps returning; about one
// frame gets through, whatever the number buffered. If this fails, gRPC
// hands over every frame it received before the end: the session's input
// pump can then apply them as the channel's does.
func TestStreamFramesBufferedAtTheHostsEndAreLost(t *testing.T) {
	const frames = 40 // all of them get through once in 2^40
	for _, how := range []string{"killed", "detached"} {
		t.Run(how, func(t *testing.T) {
			ctx := testContext(t)
			srv := &lateReader{first: make(chan struct{}), count: make(chan int, 1)}
			c, wire := serveCounted(t, srv)
			sctx, reset := context.WithCancel(ctx)
			defer reset()
			stream, err := c.client.Session(sctx)
			if err != nil {
				t.Fatal(err)
			}
			msg := &proto.SessionRequest{Frame: &proto.SessionRequest_Input{Input: []byte("first")}}
			if err := stream.Send(msg); err != nil {
				t.Fatal(err)
			}
			receive(ctx, t, srv.first, "the first frame")
			eventually(t, "the wire to settle", wire.settled)
			sent := wire.hostWritten.Load()
			msg.Frame = &proto.SessionRequest_Input{Input: []byte(strings.Repeat("x", 100))}
			for range frames {
				if err := stream.Send(msg); err != nil {
					t.Fatal(err)
				}
				// A DATA frame's header, gRPC's prefix, the message.
				sent += 9 + 5 + int64(protobuf.Size(msg))
			}
			eventually(t, "the plugin to read every frame the host sent", func() bool {
				return wire.hostWritten.Load() == sent && wire.settled()
			})
			if how == "killed" {
				wire.kill()
			} else {
				reset()
			}
			if n := receive(ctx, t, srv.count, "the plugin's count"); n == frames {
				t.Errorf("the plugin received all %d frames buffered when the host went away", n)
			} else {
				t.Logf("the plugin received %d of the %d frames buffered when the host went away", n, frames)
			}
		})
	}
}
