package shared

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// gatedPTY is a fakePTY whose Write waits for gate: a program that does
// not read its input for a while. entered is closed once a Write waits.
type gatedPTY struct {
	*fakePTY
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (p *gatedPTY) Write(b []byte) (int, error) {
	p.once.Do(func() { close(p.entered) })
	<-p.gate
	return p.fakePTY.Write(b)
}

// Input frames a host wrote on its byte channel before it went away
// (killed, or stopped without hanging up) reach the session, in order,
// even when the plugin noticed the host's end on the output side first;
// no other host took the session over meanwhile. They once were dropped
// silently: the input pump applied a frame only while the attachment
// still served the session.
func TestInputWrittenBeforeTheHostWentAway(t *testing.T) {
	ctx := testContext(t)
	gate := make(chan struct{})
	ptys := make(chan *gatedPTY, 1)
	srv := NewGRPCServer(&fakeEnv{spawn: func(context.Context, SpawnRequest) (PTY, error) {
		p := &gatedPTY{fakePTY: newFakePTY(), gate: gate, entered: make(chan struct{})}
		ptys <- p
		return p, nil
	}}, nil)
	c := glueServer(t, srv)
	hold(ctx, t, c)

	_, ch := releaseChannel(ctx, t, c, "in1")
	fake := receive(ctx, t, ptys, "spawn")
	var h [channelHeaderSize]byte
	frames := []string{"first", strings.Repeat("2", 1000), strings.Repeat("3", 60000)}
	for _, s := range frames {
		if _, err := (&net.Buffers{inputHeader(&h, channelInput, len(s)), []byte(s)}).WriteTo(ch.(*net.UnixConn)); err != nil {
			t.Fatal(err)
		}
	}
	receive(ctx, t, fake.entered, "the pump to wait in Write") // it read "first"
	ch.Close()                                                 // the host goes away
	fake.print(t, "output meanwhile")                          // which the plugin fails to send: it detaches
	eventually(t, "the session to be detached", func() bool { return !kept(ctx, t, c, "in1").Attached })
	close(gate) // the program reads again

	var got []byte
	for want := strings.Join(frames, ""); len(got) < len(want); {
		select {
		case in := <-fake.inputs:
			got = append(got, in...)
			if !strings.HasPrefix(want, string(got)) {
				t.Fatalf("input %q..., want %q...", got[:min(len(got), 20)], want[:20])
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%d of %d input bytes reached the session: the rest was dropped", len(got), len(want))
		}
	}
}

// A host that goes away at each step of setting up a session's byte
// channel (after the Started frame; after dialling the channel; after
// saying it opened it) leaves a held plugin reading the session's terminal:
// its output keeps coming in, past the scrollback, and the session is kept
// detached; the next host attaches and reads the newest bytes.
func TestHostGoneMidSetup(t *testing.T) {
	for _, step := range []string{"started", "dialled", "opened"} {
		t.Run(step, func(t *testing.T) {
			ctx := testContext(t)
			c, _, ptys, _ := keeperFake(t)
			hold(ctx, t, c)
			sctx, cancel := context.WithCancel(ctx)
			stream, started := spawnRaw(sctx, t, c, &proto.Spawn{SessionId: "m1", EnvironmentType: "FAKE",
				Size: &proto.Size{Cols: 80, Rows: 24}, ByteChannel: true, ReleaseStream: true, ScrollbackBytes: 4096})
			fake := receive(ctx, t, ptys, "spawn")
			var ch *net.UnixConn
			if step != "started" {
				var err error
				ch, _, err = dialChannel(ctx, started.GetByteChannelAddress(), started.GetByteChannelToken(), started.GetByteChannelAck(), false)
				if err != nil {
					t.Fatal(err)
				}
			}
			if step == "opened" {
				if err := stream.Send(openedFrame(true)); err != nil {
					t.Fatal(err)
				}
			}
			cancel() // the host dies
			if ch != nil {
				ch.Close()
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 0; i < 100; i++ {
					fake.print(t, strings.Repeat("x", 1000))
				}
			}()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("the plugin stopped reading the terminal: kept %+v", kept(ctx, t, c, "m1"))
			}
			eventually(t, "the session detached", func() bool { return !kept(ctx, t, c, "m1").Attached })
			if k := kept(ctx, t, c, "m1"); k.EndOffset < 99000 {
				t.Errorf("kept %+v", k)
			}
		})
	}
}
