//go:build unix

package shared

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ptyhost/ptyhost/internal/e2etest"
)

// eventPTY is a fakePTY that records its input and resizes in one list,
// in order, and whose Writes wait until gate is closed (or it is killed):
// a program that does not read its input for a while. entered is closed
// once a Write waits.
type eventPTY struct {
	*fakePTY
	events  chan string
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (p *eventPTY) Write(b []byte) (int, error) {
	p.once.Do(func() { close(p.entered) })
	select {
	case <-p.gate:
	case <-p.killed:
		return 0, io.ErrClosedPipe
	}
	p.events <- inputEvent(string(b))
	return len(b), nil
}

// Resize fails, as a PTY whose Resize asks a daemon (DOCKER's) does, when
// its context has ended: the event says so.
func (p *eventPTY) Resize(ctx context.Context, size Size) error {
	if err := ctx.Err(); err != nil {
		p.events <- sizeEvent(size) + " refused: " + err.Error()
		return err
	}
	p.events <- sizeEvent(size)
	return nil
}

func inputEvent(s string) string {
	if len(s) > 20 {
		return fmt.Sprintf("input %.10s... (%d bytes)", s, len(s))
	}
	return "input " + s
}

func sizeEvent(size Size) string { return fmt.Sprintf("size %dx%d", size.Cols, size.Rows) }

// eventServer returns a server of eventPTYs, sent on the returned channel
// as they are spawned, which logs to log.
func eventServer(log hclog.Logger) (*GRPCServer, chan *eventPTY) {
	ptys := make(chan *eventPTY, 1)
	srv := NewGRPCServer(&fakeEnv{spawn: func(context.Context, SpawnRequest) (PTY, error) {
		p := &eventPTY{fakePTY: newFakePTY(), events: make(chan string, 100), gate: make(chan struct{}), entered: make(chan struct{})}
		ptys <- p
		return p, nil
	}}, log)
	return srv, ptys
}

// channelFrame is one input or resize frame a host writes on its byte
// channel, and the event it makes on an eventPTY.
type channelFrame struct {
	input string
	size  Size // if input is empty
}

func (f channelFrame) write(t *testing.T, ch io.Writer) error {
	t.Helper()
	var h [channelHeaderSize]byte
	if f.input == "" {
		_, err := (&net.Buffers{inputHeader(&h, channelResize, 4), resizePayload(f.size)}).WriteTo(ch)
		return err
	}
	_, err := (&net.Buffers{inputHeader(&h, channelInput, len(f.input)), []byte(f.input)}).WriteTo(ch)
	return err
}

func (f channelFrame) event() string {
	if f.input == "" {
		return sizeEvent(f.size)
	}
	return inputEvent(f.input)
}

// events receives n events from p.
func (p *eventPTY) take(ctx context.Context, t *testing.T, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		select {
		case e := <-p.events:
			got = append(got, e)
		case <-ctx.Done():
			t.Fatalf("%d events, want %d: %q", len(got), n, got)
		}
	}
	return got
}

// takeover spawns id on c from a host that asks for a byte channel and
// writes old on it while the program does not read, then takes the
// session over from another host (through c's client, on a byte channel
// too), while the first is still there, and returns the new host's PTY,
// the first's channel and the session's eventPTY.
func takeover(ctx context.Context, t *testing.T, c *GRPCClient, ptys chan *eventPTY, id string, old []channelFrame) (PTY, io.ReadWriteCloser, *eventPTY) {
	t.Helper()
	hold(ctx, t, c)
	_, ch := releaseChannel(ctx, t, c, id)
	prog := receive(ctx, t, ptys, "spawn")
	for _, f := range old {
		if err := f.write(t, ch); err != nil {
			t.Fatal(err)
		}
	}
	receive(ctx, t, prog.entered, "the pump to wait in Write") // it read the first frame
	p, _, err := c.Attach(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if !UsesByteChannel(p) {
		t.Fatal("the new host's session is not on a byte channel")
	}
	return p, ch, prog
}

// A host that takes a session over while the input of the host before it
// (still there: another server of a cluster) waits at the plugin's end of
// its byte channel, as a paste to a program that is not reading does, has
// its input applied after that, in order, input and resizes: the old
// host's input is not dropped, nor interleaved with the new one's. What
// the old host writes after the takeover is refused (on Linux, where the
// plugin shuts the channel's reading down; elsewhere the plugin reads
// only until the channel is empty).
func TestTakeoverAppliesThePreviousHostsInputFirst(t *testing.T) {
	ctx := testContext(t)
	srv, ptys := eventServer(nil)
	c := glueServer(t, srv)
	old := []channelFrame{{input: "first"}, {size: Size{Cols: 100, Rows: 30}}, {input: strings.Repeat("2", 1000)},
		{input: strings.Repeat("3", 60000)}, {size: Size{Cols: 90, Rows: 20}}, {input: "last"}}
	p, ch, prog := takeover(ctx, t, c, ptys, "t1", old)

	if runtime.GOOS == "linux" {
		// The channel's buffer has room: the plugin refuses the frame.
		if err := (channelFrame{input: "late"}).write(t, ch); err == nil {
			t.Error("the old host wrote input after the takeover")
		}
	}
	if _, err := p.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := p.Resize(ctx, Size{Cols: 120, Rows: 40}); err != nil {
		t.Fatal(err)
	}
	// Output reaches the new host meanwhile.
	prog.print(t, "output meanwhile")
	readUntil(t, p, "output meanwhile")
	close(prog.gate) // the program reads again

	var want []string
	for _, f := range old {
		want = append(want, f.event())
	}
	want = append(want, inputEvent("new"), sizeEvent(Size{Cols: 120, Rows: 40}))
	if got := prog.take(ctx, t, len(want)); !slices.Equal(got, want) {
		t.Errorf("the session got\n%q\nwant\n%q", got, want)
	}
	select {
	case e := <-prog.events:
		t.Errorf("then %q", e)
	default:
	}
}

// The new host's input waits for the old host's only so long
// (GRPCServer.turns): a program that does not read for longer has
// the rest of the old input dropped, which the plugin logs as a warning
// with how much it dropped, and the new input goes on. The frame being
// written when the wait ends is written whole (a PTY's Write cannot be
// taken back).
func TestTakeoverInputWaitIsBounded(t *testing.T) {
	ctx := testContext(t)
	var logged e2etest.Buffer
	srv, ptys := eventServer(hclog.New(&hclog.LoggerOptions{Output: &logged, Level: hclog.Warn, JSONFormat: true}))
	const wait = 300 * time.Millisecond
	srv.turns.wait = wait
	c := glueServer(t, srv)
	old := []channelFrame{{input: "first"}, {input: strings.Repeat("2", 1000)}, {size: Size{Cols: 100, Rows: 30}}, {input: strings.Repeat("3", 5000)}}
	p, _, prog := takeover(ctx, t, c, ptys, "t2", old)
	sess, err := srv.lookup("t2")
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if _, err := p.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the old host's input to be cut", func() bool {
		sess.out.mu.Lock()
		defer sess.out.mu.Unlock()
		return len(sess.out.pending) == 1 && sess.out.pending[0].isCut()
	})
	if waited := time.Since(start); waited < wait {
		t.Errorf("the old host's input was cut after %v, before the wait of %v", waited, wait)
	}
	close(prog.gate) // the program reads again

	want := []string{inputEvent("first"), inputEvent("new")}
	if got := prog.take(ctx, t, len(want)); !slices.Equal(got, want) {
		t.Errorf("the session got %q, want %q", got, want)
	}
	var warning map[string]any
	eventually(t, "the warning", func() bool {
		for line := range strings.Lines(logged.String()) {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && strings.Contains(rec["@message"].(string), "the rest was dropped") {
				warning = rec
				return true
			}
		}
		return false
	})
	// JSON numbers are float64.
	if warning["@level"] != "warn" || warning["input_bytes"] != float64(6000) || warning["resizes"] != float64(1) {
		t.Errorf("logged %v, want a warning of 6000 input bytes and 1 resize dropped", warning)
	}
	// The old pump has ended (it logs as it does): nothing of its input
	// comes later.
	select {
	case e := <-prog.events:
		t.Errorf("then %q", e)
	default:
	}
}
