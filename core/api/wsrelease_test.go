package api

import (
	"testing"

	"github.com/coder/websocket"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/rawio"
)

// One large message (a paste of 1 MiB, or one over the limit that is
// dropped) does not leave its buffer to the connection for its life: a
// keystroke's message after it is read into a buffer of a keystroke's
// size class, not the paste's.
func TestMessageReaderReleasesLargeBuffer(t *testing.T) {
	for _, size := range []int{wsproto.MaxInputFrame, wsproto.MaxInputFrame + 10} {
		caps := make(chan int, 1)
		c := wsServer(t, func(conn *websocket.Conn, _ *rawio.Conn) {
			conn.SetReadLimit(hardReadLimit)
			var m messageReader
			if _, _, err := m.read(conn); err != nil {
				caps <- -1
				return
			}
			if _, _, err := m.read(conn); err != nil {
				caps <- -1
				return
			}
			caps <- m.b.Cap()
		})
		if err := c.Write(t.Context(), websocket.MessageBinary, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
		if err := c.Write(t.Context(), websocket.MessageBinary, []byte("k")); err != nil {
			t.Fatal(err)
		}
		if got := <-caps; got < 0 || got > 64<<10 {
			t.Errorf("after a message of %d bytes and a keystroke, the reader holds a buffer of %d bytes; want at most 64 KiB", size, got)
		}
	}
}

// A message over the limit is dropped whole: the part read lets go of its
// buffer at once, not at the next message, which may be long in coming.
func TestMessageReaderDropsTooLargeAtOnce(t *testing.T) {
	caps := make(chan int, 1)
	c := wsServer(t, func(conn *websocket.Conn, _ *rawio.Conn) {
		conn.SetReadLimit(hardReadLimit)
		var m messageReader
		if _, tooLarge, err := m.read(conn); err != nil || !tooLarge {
			caps <- -1
			return
		}
		caps <- m.b.Cap()
	})
	if err := c.Write(t.Context(), websocket.MessageBinary, make([]byte, wsproto.MaxInputFrame+10)); err != nil {
		t.Fatal(err)
	}
	if got := <-caps; got < 0 || got > keptReadBuffer {
		t.Errorf("after a message over the limit, the reader holds a buffer of %d bytes; want at most %d", got, keptReadBuffer)
	}
}
