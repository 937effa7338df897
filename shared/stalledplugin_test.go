//go:build unix

package shared

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/ptyhost/ptyhost/shared/proto"
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

// channelPTY is a session of c on a byte channel, its stream released:
// the host's PTY, and the channel's two ends. c's plugin lives as long as
// the test.
func channelPTY(t *testing.T, c *GRPCClient) (p *grpcPTY, host, plugin *net.UnixConn) {
	t.Helper()
	host, plugin = unixPair(t)
	pluginCtx, endPlugin := context.WithCancel(context.Background())
	t.Cleanup(endPlugin)
	c.pluginCtx = pluginCtx
	streamCtx, cancel := context.WithCancelCause(pluginCtx)
	t.Cleanup(func() { cancel(nil) })
	return newGRPCPTY(c, "s", nil, streamCtx, cancel, host, nil), host, plugin
}

// A plugin that does not read its byte channel, full: a Resize returns
// when its ctx ends (the core bounds a leaving client's resize so that
// Close does not hang), and its frame, which had its turn, still reaches
// the plugin, whole, once the plugin reads; a second Resize, which never
// had its turn, fails with its ctx's error and is never sent.
func TestResizeOnAFullChannelKeepsToCtx(t *testing.T) {
	p, host, plugin := channelPTY(t, &GRPCClient{})

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
		if err != nil {
			t.Errorf("Resize on a full channel: %v, want nil: its frame had its turn, and goes when the plugin reads", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Resize with a 300ms ctx still waits after 5s on a channel the plugin does not read")
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := p.Resize(ctx2, Size{Cols: 99, Rows: 99}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Resize waiting for its turn: %v, want its ctx's deadline", err)
	}

	// The plugin reads again: what was there, then the first resize
	// frame, and nothing more.
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
	_ = plugin.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := plugin.Read(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("after the resize frame the channel carried %d bytes more (%v), want nothing: the abandoned resize went", n, err)
	}
}

// A Resize that returns an error has not sent its frame, and a Write
// after it does not overtake it, even when its ctx ends as it starts.
func TestResizeFailedIsNotSentAndNotOvertaken(t *testing.T) {
	p, _, plugin := channelPTY(t, &GRPCClient{})

	// The plugin reads every frame. Round i's resize asks for 1+i
	// columns and its input is i, both big-endian, so that each frame
	// says its round.
	type frame struct {
		typ   byte
		round int
	}
	frames := make(chan frame, 1024)
	go func() {
		var h [channelHeaderSize]byte
		for {
			if _, err := io.ReadFull(plugin, h[:]); err != nil {
				return
			}
			payload := make([]byte, binary.BigEndian.Uint32(h[1:]))
			if _, err := io.ReadFull(plugin, payload); err != nil || len(payload) < 2 {
				return
			}
			round := int(binary.BigEndian.Uint16(payload))
			if h[0] == channelResize {
				round--
			}
			frames <- frame{h[0], round}
		}
	}()

	const rounds = 300
	var (
		failedErr [rounds]bool
		inputSeen [rounds]bool
	)
	failedButSent, overtaken, failed := 0, 0, 0
	for i := range rounds {
		// A ctx that ends before, while or after the frame takes its
		// turn: a client leaving as it resizes.
		ctx, stop := context.WithTimeout(context.Background(), time.Duration(i%30)*time.Microsecond)
		err := p.Resize(ctx, Size{Cols: uint16(1 + i), Rows: 24})
		stop()
		if err != nil {
			failed++
			failedErr[i] = true
		}
		if _, werr := p.Write(binary.BigEndian.AppendUint16(nil, uint16(i))); werr != nil {
			t.Fatal(werr)
		}
		// Read up to this round's input: its resize, if it went, comes
		// before it (a late one of an earlier round may come too).
		for !inputSeen[i] {
			select {
			case f := <-frames:
				switch {
				case f.typ == channelInput:
					inputSeen[f.round] = true
				case f.typ == channelResize && failedErr[f.round]:
					failedButSent++
				case f.typ == channelResize && inputSeen[f.round]:
					overtaken++
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: the input did not reach the plugin within 5s", i)
			}
		}
	}
	if failed == 0 || failed == rounds {
		t.Logf("%d of %d Resizes failed: the race was not exercised both ways", failed, rounds)
	}
	if failedButSent > 0 {
		t.Errorf("%d/%d Resizes returned an error, yet their frame reached the plugin (the core keeps the old size)", failedButSent, rounds)
	}
	if overtaken > 0 {
		t.Errorf("%d/%d times the input written after Resize returned reached the plugin before the resize frame", overtaken, rounds)
	}
}

// stallingEnd is a plugin that never answers SessionEnd.
type stallingEnd struct{ proto.EnvironmentClient }

func (stallingEnd) SessionEnd(ctx context.Context, _ *proto.SessionEndRequest, _ ...grpc.CallOption) (*proto.SessionEndResponse, error) {
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

// A plugin that ends a released stream's channel and never says how the
// session ended does not leave the session running: Read returns an
// error wrapping ErrPluginProtocol once the host's wait is over.
func TestSessionEndUnanswered(t *testing.T) {
	p, _, plugin := channelPTY(t, &GRPCClient{client: stallingEnd{}, endWait: 200 * time.Millisecond})
	if _, err := plugin.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	plugin.Close()

	done := make(chan error, 1)
	go func() {
		out, err := io.ReadAll(p)
		if string(out) != "last words" {
			err = fmt.Errorf("read %q before the end (%w)", out, err)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrPluginProtocol) || !strings.Contains(err.Error(), "did not say how the session ended") {
			t.Errorf("Read after an unanswered SessionEnd: %v, want ErrPluginProtocol", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still waits 5s after the channel's end for a SessionEnd the plugin never answers")
	}
}
