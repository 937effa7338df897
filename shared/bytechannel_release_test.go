package shared

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// releaseChannel opens a session stream that spawns id asking for a byte
// channel and for the stream's release, opens the channel as a host does
// and checks that the plugin then ends the stream with OK. It returns the
// channel and the Started frame.
func releaseChannel(ctx context.Context, t *testing.T, c *GRPCClient, id string) (*proto.Started, io.ReadWriteCloser) {
	t.Helper()
	stream, started := spawnRaw(ctx, t, c, &proto.Spawn{SessionId: id, EnvironmentType: "FAKE",
		Size: &proto.Size{Cols: 80, Rows: 24}, ByteChannel: true, ReleaseStream: true})
	if !started.GetReleasesStream() || started.GetByteChannelId() == 0 {
		t.Fatalf("started %v, want a byte channel it releases the stream to", started)
	}
	ch, _, err := dialChannel(ctx, started.GetByteChannelAddress(), started.GetByteChannelToken(), started.GetByteChannelAck(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	if err := stream.Send(openedFrame(true)); err != nil {
		t.Fatal(err)
	}
	if err := awaitRelease(stream); err != nil {
		t.Fatalf("the plugin did not release the stream: %v", err)
	}
	return started, ch
}

// A released stream's end comes from SessionEnd, asked with its channel's
// id, and waits for the end. (The path where the stream is kept, because
// the host did not ask, is forEachPath's "channel-kept-stream".)
func TestReleasedStreamEnd(t *testing.T) {
	ctx := testContext(t)
	c, _, ptys := spawnFake(t)

	started, ch := releaseChannel(ctx, t, c, "r1")
	fake := receive(ctx, t, ptys, "spawn")
	id := started.GetByteChannelId()
	end := func(session string, id uint64) (*proto.SessionEndResponse, error) {
		return c.client.SessionEnd(ctx, &proto.SessionEndRequest{SessionId: session, ByteChannelId: id})
	}

	if _, err := end("r1", id+1); status.Code(err) != codes.Unavailable {
		t.Errorf("SessionEnd of another channel: %v, want Unavailable", err)
	}
	if _, err := end("nobody", id); status.Code(err) != codes.NotFound {
		t.Errorf("SessionEnd of an unknown session: %v, want NotFound", err)
	}
	// Asked before the end, SessionEnd waits for it.
	type answer struct {
		resp *proto.SessionEndResponse
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		r, err := end("r1", id)
		answered <- answer{r, err}
	}()
	go func() {
		_, _ = fake.out.Write([]byte("bye"))
		fake.finish(3)
	}()
	out, err := io.ReadAll(ch)
	if err != nil || string(out) != "bye" {
		t.Fatalf("channel: %q, %v; want bye, then its end", out, err)
	}
	a := receive(ctx, t, answered, "SessionEnd's answer")
	if a.err != nil || a.resp.GetExit().GetCode() != 3 {
		t.Errorf("SessionEnd: %v, %v; want exit code 3", a.resp, a.err)
	}
}

// A bad frame on a released channel ends the attachment as it ends a
// stream: SessionEnd says InvalidArgument, the host's Read wraps
// ErrInvalidArgument in ErrPluginExited, other sessions go on.
func TestReleasedChannelBadFrame(t *testing.T) {
	ctx := testContext(t)
	c, _, ptys := spawnFake(t)
	started, ch := releaseChannel(ctx, t, c, "bad")
	fake := receive(ctx, t, ptys, "spawn")
	if _, err := ch.Write([]byte{9, 0, 0, 0, 1, 'x'}); err != nil {
		t.Fatal(err)
	}
	// The plugin closes the channel: EOF, or a reset if it left the
	// frame's rest unread.
	_, _ = io.ReadAll(ch)
	_, err := c.client.SessionEnd(ctx, &proto.SessionEndRequest{SessionId: "bad", ByteChannelId: started.GetByteChannelId()})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("SessionEnd after a bad frame: %v, want InvalidArgument", err)
	}
	waitClosed(ctx, t, fake.closed, "the session's release")

	p, err := c.Spawn(ctx, spawnReq("good"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	good := receive(ctx, t, ptys, "spawn")
	if _, err := p.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	if got := receive(ctx, t, good.inputs, "input"); string(got) != "still here" {
		t.Errorf("the other session got %q", got)
	}
}

// Through the client: a released session's Read ends with the plugin's
// error when SessionEnd fails, as it would with the stream's status.
func TestReleasedReadReportsTheEnd(t *testing.T) {
	ctx := testContext(t)
	c, _, ptys := spawnFake(t)
	p, err := c.Spawn(ctx, spawnReq("e1"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.(*grpcPTY).stream != nil {
		t.Fatal("the session kept its stream")
	}
	fake := receive(ctx, t, ptys, "spawn")
	fake.out.CloseWithError(fmt.Errorf("%w: the terminal went away", ErrUnavailable))
	if _, err := io.ReadAll(p); !errors.Is(err, ErrPluginExited) || !errors.Is(err, ErrUnavailable) ||
		!strings.Contains(err.Error(), "the terminal went away") {
		t.Errorf("Read after the PTY failed: %v, want ErrPluginExited wrapping the plugin's error", err)
	}
}

// stubbornServer promises to release session streams and never ends them.
type stubbornServer struct{ *GRPCServer }

func (s stubbornServer) Session(stream proto.Environment_SessionServer) error {
	err := s.GRPCServer.Session(stream)
	<-stream.Context().Done()
	return err
}

// The caller's context bounds a spawn whose plugin never ends the stream
// it promised to release, and what it started is released.
func TestReleaseHonoursTheCallersContext(t *testing.T) {
	srv, ptys := fakeServer()
	t.Cleanup(func() { srv.CloseAll(context.Background()) })
	c := serveRaw(t, stubbornServer{srv})
	ctx, cancel := context.WithTimeout(testContext(t), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if p, err := c.Spawn(ctx, spawnReq("s1")); !errors.Is(err, context.DeadlineExceeded) {
		if p != nil {
			p.Close()
		}
		t.Fatalf("Spawn: %v, want the caller's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Spawn took %v past a 300ms deadline", d)
	}
	fake := receive(testContext(t), t, ptys, "spawn")
	waitClosed(testContext(t), t, fake.closed, "the abandoned session's release")
}

// A released stream's end stays its own: an attach that takes the session
// over after the exit leaves the first host the exit status.
func TestReleasedEndSurvivesATakeover(t *testing.T) {
	ctx := testContext(t)
	c, _, ptys, _ := keeperFake(t)
	hold(ctx, t, c)
	started, ch := releaseChannel(ctx, t, c, "t1")
	fake := receive(ctx, t, ptys, "spawn")
	go func() {
		_, _ = fake.out.Write([]byte("out"))
		fake.finish(7)
	}()
	if out, err := io.ReadAll(ch); err != nil || string(out) != "out" {
		t.Fatalf("channel: %q, %v", out, err)
	}
	p, _, err := c.Attach(ctx, "t1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	resp, err := c.client.SessionEnd(ctx, &proto.SessionEndRequest{SessionId: "t1", ByteChannelId: started.GetByteChannelId()})
	if err != nil || resp.GetExit().GetCode() != 7 {
		t.Errorf("SessionEnd of the first channel after the takeover: %v, %v; want exit code 7", resp, err)
	}
	if out, err := io.ReadAll(p); err != nil || string(out) != "out" {
		t.Errorf("the new attachment read %q, %v; want the kept output", out, err)
	}
	if st, err := p.Wait(ctx); err != nil || st.Code != 7 {
		t.Errorf("the new attachment's exit: %+v, %v; want code 7", st, err)
	}
}
