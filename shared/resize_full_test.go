//go:build unix

package shared

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// unixPair returns the two ends of a connected Unix stream socket.
func unixPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socket")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	a, b := conn(fds[0]), conn(fds[1])
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// A plugin that does not read its byte channel, full: a Resize returns
// when its ctx ends (the core bounds a leaving client's resize so that
// Close does not hang), and its frame still reaches the plugin, whole,
// once the plugin reads.
func TestResizeOnAFullChannelKeepsToCtx(t *testing.T) {
	host, plugin := unixPair(t)
	pluginCtx, endPlugin := context.WithCancel(context.Background())
	defer endPlugin()
	streamCtx, cancel := context.WithCancelCause(pluginCtx)
	defer cancel(nil)
	p := newGRPCPTY(&GRPCClient{pluginCtx: pluginCtx}, "s", nil, streamCtx, cancel, host, nil)

	// Fill the socket, as input the plugin does not read would.
	var filled int
	_ = host.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		n, err := host.Write(make([]byte, 4096))
		filled += n
		if err != nil {
			break
		}
	}
	_ = host.SetWriteDeadline(time.Time{})

	size := Size{Cols: 81, Rows: 25}
	ctx, cancelResize := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelResize()
	done := make(chan error, 1)
	go func() { done <- p.Resize(ctx, size) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Resize on a full channel: %v, want its ctx's deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Resize with a 300ms ctx still waits after 5s on a channel the plugin does not read")
	}

	// The plugin reads again: what was there, then the resize frame.
	var h [channelHeaderSize]byte
	want := append(inputHeader(&h, channelResize, len(resizePayload(size))), resizePayload(size)...)
	got := make([]byte, filled+len(want))
	_ = plugin.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(plugin, got); err != nil {
		t.Fatalf("reading the channel: %v", err)
	}
	if !bytes.Equal(got[filled:], want) {
		t.Errorf("after the input, the channel carried %x, want the resize frame %x", got[filled:], want)
	}
}
