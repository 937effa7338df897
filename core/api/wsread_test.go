package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsServer serves each WebSocket it accepts with serve, and returns a
// client connected to it.
func wsServer(t *testing.T, serve func(conn *websocket.Conn)) *websocket.Conn {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		serve(conn)
	}))
	t.Cleanup(srv.Close)
	c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// The connection's reads wait with a context that cannot end (so that
// they register with none, which allocates): serveConn's context ending
// still ends a read under way, and a writer that does not end with it,
// by closing the connection.
func TestServeConnEndsReadsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	readEnded := make(chan error, 1)
	h := &handler{}
	wsServer(t, func(conn *websocket.Conn) {
		h.serveConn(ctx, conn, func(context.Context) {
			var m messageReader
			_, _, err := m.read(conn)
			readEnded <- err
		}, func(context.Context) {
			// A write that ignores its context: blocked until the
			// connection closes.
			_, _, _ = conn.Reader(context.Background())
		}, nil)
	})
	time.Sleep(50 * time.Millisecond) // the read waits
	select {
	case err := <-readEnded:
		t.Fatalf("the read ended before the context: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-readEnded:
		if err == nil {
			t.Fatal("the read ended without an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read did not end when serveConn's context did")
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
	c := wsServer(t, func(conn *websocket.Conn) {
		var m messageReader
		if _, _, err := m.read(conn); err != nil { // the first, with the buffers' growth
			got <- -1
			return
		}
		// Counted from here, the client's writes would count too: all
		// of them wait in the socket first.
		<-written
		var bad bool
		got <- testing.AllocsPerRun(msgs-2, func() {
			typ, tooLarge, err := m.read(conn)
			bad = bad || err != nil || tooLarge || typ != websocket.MessageBinary || m.b.String() != "k"
		})
		if bad {
			got <- -1
		}
	})
	for range msgs {
		if err := c.Write(t.Context(), websocket.MessageBinary, []byte("k")); err != nil {
			t.Fatal(err)
		}
	}
	close(written)
	if allocs := <-got; allocs != 0 {
		t.Fatalf("%v allocations per message read (-1: a read failed), want none", allocs)
	}
	select {
	case <-got:
		t.Fatal("a read got something other than the message written")
	default:
	}
}
