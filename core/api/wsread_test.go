package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/internal/rawio"
)

// wsServer serves each WebSocket it accepts with serve, and returns a
// client connected to it. It accepts as the attach endpoint does
// (hijackTap): sock is the connection's raw socket, nil if it has none.
func wsServer(t *testing.T, serve func(conn *websocket.Conn, sock *rawio.Conn)) *websocket.Conn {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tap := &hijackTap{ResponseWriter: w}
		conn, err := websocket.Accept(tap, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		serve(conn, tap.sock)
	}))
	t.Cleanup(srv.Close)
	c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// The connection's reads and writes wait with contexts that cannot end
// (so that they register with none, which allocates): serveConn's context
// ending still ends a read under way and a write the client does not
// take, by closing the connection, and serveConn returns.
func TestServeConnEndsReadsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	readEnded, writeEnded, served := make(chan error, 1), make(chan error, 1), make(chan struct{})
	h := &handler{}
	wsServer(t, func(conn *websocket.Conn, _ *rawio.Conn) {
		defer close(served)
		h.serveConn(ctx, conn, func(context.Context) {
			var m messageReader
			_, _, err := m.read(conn)
			readEnded <- err
		}, func(context.Context) {
			// More than the sockets hold, to a client that reads
			// nothing, with a context that cannot end.
			writeEnded <- conn.Write(context.Background(), websocket.MessageBinary, make([]byte, 64<<20))
		}, nil)
	}) // the client reads nothing
	time.Sleep(50 * time.Millisecond) // the read and the write wait
	select {
	case err := <-readEnded:
		t.Fatalf("the read ended before the context: %v", err)
	case err := <-writeEnded:
		t.Fatalf("the write ended before the context: %v", err)
	default:
	}
	cancel()
	for what, ch := range map[string]chan error{"read": readEnded, "write": writeEnded} {
		select {
		case err := <-ch:
			if err == nil {
				t.Fatalf("the %s ended without an error", what)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the %s did not end when serveConn's context did", what)
		}
	}
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("serveConn did not return")
	}
}

// Reading a client's message, a keystroke, allocates nothing. Under the
// race detector, sync.Pool drops what is put in it at random, and the
// WebSocket's pooled buffers are allocated again: scripts/test.sh runs
// this test once more without it.
func TestMessageReaderNoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are counted without -race (scripts/test.sh runs the NoAllocations tests so)")
	}
	const msgs = 300
	got := make(chan float64, 1)
	written := make(chan struct{})
	c := wsServer(t, func(conn *websocket.Conn, _ *rawio.Conn) {
		var m messageReader
		if _, _, err := m.read(conn); err != nil { // the first, with the buffers' growth
			got <- -1
			return
		}
		// Counted from here, the client's writes would count too: all
		// of them wait in the socket first.
		<-written
		var bad bool
		allocs := testing.AllocsPerRun(msgs-2, func() {
			typ, tooLarge, err := m.read(conn)
			bad = bad || err != nil || tooLarge || typ != websocket.MessageBinary || m.b.String() != "k"
		})
		if bad {
			allocs = -1
		}
		got <- allocs
	})
	for range msgs {
		if err := c.Write(t.Context(), websocket.MessageBinary, []byte("k")); err != nil {
			t.Fatal(err)
		}
	}
	close(written)
	if allocs := <-got; allocs != 0 {
		t.Fatalf("%v allocations per message read (-1: a read failed or got another message), want none", allocs)
	}
}

// Writing a keystroke's echo to a client, on its raw socket as the
// attach endpoint does, allocates nothing.
func TestEchoWriteNoAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocations are counted without -race (scripts/test.sh runs the NoAllocations tests so)")
	}
	got := make(chan float64, 1)
	wsServer(t, func(conn *websocket.Conn, sock *rawio.Conn) {
		if sock == nil {
			got <- -2
			return
		}
		c := &wsClient{conn: conn, writeTimeout: time.Second, sock: sock}
		echo := []byte("k")
		if err := c.write(t.Context(), websocket.MessageBinary, echo); err != nil { // the first, with the buffers' growth
			got <- -1
			return
		}
		var failed bool
		// The client reads nothing: 200 small frames fit in the
		// sockets' buffers.
		allocs := testing.AllocsPerRun(200, func() {
			failed = failed || c.write(t.Context(), websocket.MessageBinary, echo) != nil
		})
		if failed {
			allocs = -1
		}
		got <- allocs
	})
	if allocs := <-got; allocs != 0 {
		t.Fatalf("%v allocations per echo written (-1: a write failed; -2: no raw socket), want none", allocs)
	}
}
