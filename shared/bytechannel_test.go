package shared

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// offerChannel opens a session stream that spawns id asking for a byte
// channel, as a host would, and returns the stream and its Started frame,
// which must offer one.
func offerChannel(ctx context.Context, t *testing.T, c *GRPCClient, id string) (proto.Environment_SessionClient, *proto.Started) {
	t.Helper()
	return spawnRaw(ctx, t, c, &proto.Spawn{SessionId: id, EnvironmentType: "FAKE", Size: &proto.Size{Cols: 80, Rows: 24}, ByteChannel: true})
}

// spawnRaw opens a session stream that sends spawn, and returns the stream
// and its Started frame, which must offer a byte channel.
func spawnRaw(ctx context.Context, t *testing.T, c *GRPCClient, spawn *proto.Spawn) (proto.Environment_SessionClient, *proto.Started) {
	t.Helper()
	stream, err := c.client.Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&proto.SessionRequest{Frame: &proto.SessionRequest_Spawn{Spawn: spawn}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	started := resp.GetStarted()
	if started.GetByteChannelAddress() == "" {
		t.Fatalf("first frame %v, want started with a byte channel offer", resp)
	}
	return stream, started
}

// openedFrame is the host's byte_channel frame.
func openedFrame(opened bool) *proto.SessionRequest {
	return &proto.SessionRequest{Frame: &proto.SessionRequest_ByteChannel{ByteChannel: &proto.ByteChannel{Opened: opened}}}
}

// dialWith connects to address and writes token, and returns what the
// plugin answers before it closes the connection or 1s passes.
func dialWith(t *testing.T, address string, token []byte) []byte {
	t.Helper()
	c, err := net.Dial("unix", address)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(token); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	got, _ := io.ReadAll(c)
	return got
}

// The byte channel's socket is private to the plugin's user, takes only
// the offered token, once, and is gone once no offer is open; a stranger's
// connection changes nothing for the session.
func TestByteChannelRefusesStrangers(t *testing.T) {
	ctx := testContext(t)
	c, _, ptys := spawnFake(t)
	stream, started := offerChannel(ctx, t, c, "s1")
	fake := receive(ctx, t, ptys, "spawn")
	addr, token := started.GetByteChannelAddress(), started.GetByteChannelToken()

	dir, err := os.Stat(filepath.Dir(addr))
	if err != nil {
		t.Fatal(err)
	}
	if perm := dir.Mode().Perm(); perm != 0o700 {
		t.Errorf("the socket's directory has mode %v, want 0700", perm)
	}

	wrong := bytes.Clone(token)
	wrong[len(wrong)-1] ^= 1
	if got := dialWith(t, addr, wrong); len(got) != 0 {
		t.Errorf("a wrong secret got %q, want the connection closed unanswered", got)
	}
	if got := dialWith(t, addr, []byte("GET / HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n")); len(got) != 0 {
		t.Errorf("a stranger's request got %q, want the connection closed unanswered", got)
	}

	// The offer still stands: the host's connection is taken.
	ch, _, err := dialChannel(ctx, addr, token, started.GetByteChannelAck(), false)
	if err != nil {
		t.Fatalf("the host's dial after strangers failed: %v", err)
	}
	defer ch.Close()
	if _, err := os.Stat(addr); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is still there with no offer open (stat: %v)", err)
	}
	if _, _, err := dialChannel(ctx, addr, token, started.GetByteChannelAck(), false); err == nil {
		t.Errorf("the token was taken twice")
	}
	if err := stream.Send(openedFrame(true)); err != nil {
		t.Fatal(err)
	}

	// The session works on the channel: input down, output up, then
	// the channel's end and the exit frame on the stream.
	var h [channelHeaderSize]byte
	if _, err := (&net.Buffers{inputHeader(&h, channelInput, 3), []byte("hi\r")}).WriteTo(ch); err != nil {
		t.Fatal(err)
	}
	if got := receive(ctx, t, fake.inputs, "input"); string(got) != "hi\r" {
		t.Errorf("plugin got input %q, want %q", got, "hi\r")
	}
	go func() {
		_, _ = fake.out.Write([]byte("output"))
		fake.finish(4)
	}()
	out, err := io.ReadAll(ch)
	if err != nil || string(out) != "output" {
		t.Errorf("channel carried %q, %v; want %q and its end", out, err, "output")
	}
	resp, err := stream.Recv()
	if err != nil || resp.GetExit().GetCode() != 4 {
		t.Errorf("after the channel's end the stream sent %v, %v; want exit 4", resp, err)
	}
}

// A host that cannot open the offered channel says so, and the stream
// carries the session's bytes.
func TestByteChannelDeclined(t *testing.T) {
	ctx := testContext(t)
	c, _, ptys := spawnFake(t)
	stream, _ := offerChannel(ctx, t, c, "s1")
	fake := receive(ctx, t, ptys, "spawn")
	if err := stream.Send(openedFrame(false)); err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&proto.SessionRequest{Frame: &proto.SessionRequest_Input{Input: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	if got := receive(ctx, t, fake.inputs, "input"); string(got) != "x" {
		t.Errorf("plugin got input %q, want x", got)
	}
	go func() { _, _ = fake.out.Write([]byte("on the stream")) }()
	resp, err := stream.Recv()
	if err != nil || string(resp.GetOutput()) != "on the stream" {
		t.Errorf("stream sent %v, %v; want the output", resp, err)
	}
}

// After an offer the host's next frame must say whether it opened the
// channel; anything else ends the stream as a bad request.
func TestByteChannelOfferNeedsAnAnswer(t *testing.T) {
	ctx := testContext(t)
	c, _, ptys := spawnFake(t)
	stream, _ := offerChannel(ctx, t, c, "s1")
	fake := receive(ctx, t, ptys, "spawn")
	if err := stream.Send(&proto.SessionRequest{Frame: &proto.SessionRequest_Input{Input: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	_, err := stream.Recv()
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "byte_channel") {
		t.Errorf("stream ended with %v, want InvalidArgument about byte_channel", err)
	}
	waitClosed(ctx, t, fake.closed, "the unheld session's release")
}

// A host that writes a frame the protocol does not have ends its own
// session's stream with InvalidArgument; another session on the same
// plugin goes on.
func TestByteChannelBadFrame(t *testing.T) {
	ctx := testContext(t)
	c, _, ptys := spawnFake(t)
	good, err := c.Spawn(ctx, spawnReq("good"))
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	goodFake := receive(ctx, t, ptys, "spawn")

	for _, bad := range []struct {
		name  string
		frame []byte
	}{
		{"unknown type", []byte{9, 0, 0, 0, 1, 'x'}},
		{"too long", []byte{channelInput, 0xff, 0xff, 0xff, 0xff}},
		{"short resize", []byte{channelResize, 0, 0, 0, 2, 0, 80}},
	} {
		t.Run(bad.name, func(t *testing.T) {
			id := "bad-" + strings.ReplaceAll(bad.name, " ", "-")
			stream, started := offerChannel(ctx, t, c, id)
			fake := receive(ctx, t, ptys, "spawn")
			ch, _, err := dialChannel(ctx, started.GetByteChannelAddress(), started.GetByteChannelToken(), started.GetByteChannelAck(), false)
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			if err := stream.Send(openedFrame(true)); err != nil {
				t.Fatal(err)
			}
			if _, err := ch.Write(bad.frame); err != nil {
				t.Fatal(err)
			}
			_, err = stream.Recv()
			if status.Code(err) != codes.InvalidArgument {
				t.Errorf("stream ended with %v, want InvalidArgument", err)
			}
			waitClosed(ctx, t, fake.closed, "the session's release")
		})
	}

	if _, err := good.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	if got := receive(ctx, t, goodFake.inputs, "input"); string(got) != "still here" {
		t.Errorf("the other session got %q", got)
	}
}

// A plugin that cannot make its socket offers no channel: the session's
// bytes go on its stream, and nothing else changes.
func TestByteChannelUnavailable(t *testing.T) {
	// No Unix socket path can be this long.
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	c, _, ptys := spawnFake(t)
	// After go-plugin made its own socket: the plugin makes its channel's
	// socket at its first offer.
	t.Setenv("TMPDIR", long)
	p, err := c.Spawn(ctx, spawnReq("s1"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if UsesByteChannel(p) {
		t.Fatal("the session uses a byte channel the plugin could not make")
	}
	fake := receive(ctx, t, ptys, "spawn")
	go func() {
		_, _ = fake.out.Write([]byte("hello"))
		fake.finish(0)
	}()
	out, err := io.ReadAll(p)
	if err != nil || string(out) != "hello" {
		t.Errorf("read %q, %v; want hello", out, err)
	}
}

// The host takes a channel only from the plugin that offered it: a socket
// that does not answer with the offer's acknowledgement is refused, as is
// an address that is not an absolute socket path.
func TestDialChannelChecksThePlugin(t *testing.T) {
	ctx := testContext(t)
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, channelTokenSize)
			_, _ = io.ReadFull(c, buf)
			_, _ = c.Write(bytes.Repeat([]byte("H"), channelAckSize))
			c.Close()
		}
	}()
	token, ack := make([]byte, channelTokenSize), make([]byte, channelAckSize)
	if _, _, err := dialChannel(ctx, path, token, ack, false); err == nil {
		t.Error("a socket with the wrong acknowledgement was taken")
	}
	for _, addr := range []string{"relative/sock", "/" + strings.Repeat("x", 200)} {
		if _, _, err := dialChannel(ctx, addr, token, ack, false); err == nil {
			t.Errorf("address %q was dialled", addr)
		}
	}
	if _, _, err := dialChannel(ctx, path, token[:3], ack, false); err == nil {
		t.Error("a short token was sent")
	}
}
