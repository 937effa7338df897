//go:build linux

package shared

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// channelPlugin is a hostile plugin speaking the raw protocol that offers
// a byte channel on a socket of its own and behaves on it as its hooks
// say.
type channelPlugin struct {
	proto.UnimplementedEnvironmentServer
	dir string
	// release sets Started.releases_stream.
	release bool
	// onConn runs with each accepted channel connection, after the
	// token was read; it owns conn. ack is the acknowledgement offered.
	onConn func(conn *net.UnixConn, ack []byte)
	// afterOffer runs on the stream after the Started frame, instead of
	// the normal course (read the byte_channel frame, then release or
	// wait); nil: the normal course.
	afterOffer func(stream proto.Environment_SessionServer) error
	// end answers SessionEnd; nil: exit 0.
	end func(ctx context.Context) (*proto.SessionEndResponse, error)
}

func (s *channelPlugin) SessionEnd(ctx context.Context, _ *proto.SessionEndRequest) (*proto.SessionEndResponse, error) {
	if s.end != nil {
		return s.end(ctx)
	}
	return &proto.SessionEndResponse{Exit: &proto.Exit{}}, nil
}

func (s *channelPlugin) Close(context.Context, *proto.CloseRequest) (*proto.CloseResponse, error) {
	return &proto.CloseResponse{}, nil
}

func (s *channelPlugin) Kill(context.Context, *proto.KillRequest) (*proto.KillResponse, error) {
	return &proto.KillResponse{}, nil
}

func (s *channelPlugin) Session(stream proto.Environment_SessionServer) error {
	if _, err := stream.Recv(); err != nil {
		return err
	}
	token := make([]byte, channelTokenSize)
	ack := make([]byte, channelAckSize)
	rand.Read(token)
	rand.Read(ack)
	d, err := os.MkdirTemp(s.dir, "c")
	if err != nil {
		return err
	}
	addr := filepath.Join(d, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			var got [channelTokenSize]byte
			if _, err := io.ReadFull(c, got[:]); err != nil {
				c.Close()
				continue
			}
			if s.onConn == nil {
				c.Close()
				continue
			}
			go s.onConn(c, ack)
		}
	}()
	started := &proto.Started{
		ByteChannelAddress: addr, ByteChannelToken: token, ByteChannelAck: ack,
		ReleasesStream: s.release, ByteChannelId: 7,
	}
	if err := stream.Send(&proto.SessionResponse{Frame: &proto.SessionResponse_Started{Started: started}}); err != nil {
		return err
	}
	if s.afterOffer != nil {
		return s.afterOffer(stream)
	}
	if _, err := stream.Recv(); err != nil {
		return err
	}
	if s.release {
		return nil
	}
	<-stream.Context().Done()
	return nil
}

// fdCount counts this process's open descriptors.
func fdCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting descriptors: %v", err)
	}
	return len(ents)
}

// settleFDs waits up to 3s for the open descriptors to come back to want.
func settleFDs(t *testing.T, want int) int {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		n := fdCount(t)
		if n <= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendAck writes ack on c with fds beside it.
func sendAck(c *net.UnixConn, ack []byte, fds ...int) error {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	_, _, err := c.WriteMsgUnix(ack, oob, nil)
	return err
}

// A hostile plugin's byte channel, at each step of a session's setup:
// every case ends in a session on the stream, a session on the channel
// or a failed spawn, within the handshake's and the caller's bounds, and
// leaves no descriptor of the host's open once closed.
func TestHostileChannelSetup(t *testing.T) {
	// The descriptors the plugin sends, as numbers (Fd would switch the
	// terminal to blocking mode), open until the test's end.
	dup := func(f *os.File, err error) int {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fd, err := unix.Dup(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	m, ttyF, err := OpenPTY(Size{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatal(err)
	}
	master, tty := dup(m, nil), dup(ttyF, nil)
	devnull := dup(os.Open(os.DevNull))
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pipeR, pipeW := dup(pr, nil), dup(pw, nil)
	regular := dup(os.Create(filepath.Join(t.TempDir(), "f")))

	// keep holds a connection of the plugin's until the case ends.
	var (
		holdMu sync.Mutex
		hold   chan struct{}
	)
	keep := func(c *net.UnixConn) {
		holdMu.Lock()
		h := hold
		holdMu.Unlock()
		<-h
		c.Close()
	}
	for _, tt := range []struct {
		name       string
		p          channelPlugin
		wantErr    bool
		wantChan   bool
		wantDirect bool
		readErr    bool
		maybeErr   bool // an error, or a session whose Read fails (by timing)
		maxWait    time.Duration
	}{
		{name: "no ack", p: channelPlugin{onConn: func(c *net.UnixConn, _ []byte) { keep(c) }}, maxWait: 7 * time.Second},
		{name: "wrong ack", p: channelPlugin{onConn: func(c *net.UnixConn, _ []byte) { c.Write(make([]byte, channelAckSize)); keep(c) }}},
		{name: "short ack then close", p: channelPlugin{onConn: func(c *net.UnixConn, ack []byte) { c.Write(ack[:3]); c.Close() }}},
		{name: "ack with a pipe", p: channelPlugin{onConn: func(c *net.UnixConn, ack []byte) { sendAck(c, ack, pipeW); keep(c) }}, wantChan: true},
		{name: "ack with dev null", p: channelPlugin{onConn: func(c *net.UnixConn, ack []byte) { sendAck(c, ack, devnull); keep(c) }}, wantChan: true},
		{name: "ack with a file", p: channelPlugin{onConn: func(c *net.UnixConn, ack []byte) { sendAck(c, ack, regular); keep(c) }}, wantChan: true},
		{name: "ack with the tty", p: channelPlugin{onConn: func(c *net.UnixConn, ack []byte) { sendAck(c, ack, tty); keep(c) }}, wantChan: true},
		{name: "ack with its own socket", p: channelPlugin{onConn: func(c *net.UnixConn, ack []byte) {
			rc, _ := c.SyscallConn()
			rc.Control(func(fd uintptr) { sendAck(c, ack, int(fd)) })
			keep(c)
		}}, wantChan: true},
		{name: "ack with many", p: channelPlugin{onConn: func(c *net.UnixConn, ack []byte) {
			sendAck(c, ack, master, pipeW, devnull, master, regular, pipeR)
			keep(c)
		}}, wantChan: true},
		{name: "ack with a master", p: channelPlugin{onConn: func(c *net.UnixConn, ack []byte) { sendAck(c, ack, master); keep(c) }}, wantChan: true, wantDirect: true},
		{name: "stream ends after the offer", p: channelPlugin{
			onConn:     func(c *net.UnixConn, ack []byte) { sendAck(c, ack, master); keep(c) },
			afterOffer: func(proto.Environment_SessionServer) error { return errors.New("gone") },
		}, maybeErr: true, readErr: true},
		{name: "release never comes", p: channelPlugin{release: true,
			onConn: func(c *net.UnixConn, ack []byte) { sendAck(c, ack, master); keep(c) },
			afterOffer: func(stream proto.Environment_SessionServer) error {
				<-stream.Context().Done()
				return nil
			},
		}, wantErr: true},
		{name: "released with a frame", p: channelPlugin{release: true,
			onConn: func(c *net.UnixConn, ack []byte) { sendAck(c, ack, master); keep(c) },
			afterOffer: func(stream proto.Environment_SessionServer) error {
				stream.Recv()
				return stream.Send(exitFrame(&proto.Exit{}))
			},
		}, wantErr: true},
		{name: "released", p: channelPlugin{release: true,
			onConn: func(c *net.UnixConn, ack []byte) { sendAck(c, ack, master); keep(c) },
		}, wantChan: true, wantDirect: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.dir = t.TempDir()
			holdMu.Lock()
			hold = make(chan struct{})
			holdMu.Unlock()
			c := glueRaw(t, &tt.p)
			before := fdCount(t)
			// The caller's bound: 2s, or longer than the handshake's.
			wait := 2 * time.Second
			if tt.maxWait == 0 {
				tt.maxWait = 3 * time.Second
			} else {
				wait = tt.maxWait + time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			start := time.Now()
			p, err := c.Spawn(ctx, SpawnRequest{SessionID: "s", Size: Size{Cols: 80, Rows: 24}})
			t.Logf("Spawn: %v after %v", err, time.Since(start))
			if d := time.Since(start); d > tt.maxWait {
				t.Errorf("Spawn took %v, want at most %v", d, tt.maxWait)
			}
			if (err != nil) != tt.wantErr && !tt.maybeErr {
				t.Fatalf("Spawn: %v, want error %v", err, tt.wantErr)
			}
			if err == nil {
				g := p.(*grpcPTY)
				if got := g.ch != nil; got != tt.wantChan {
					t.Errorf("byte channel: %v, want %v", got, tt.wantChan)
				}
				if got := g.input != nil; got != tt.wantDirect {
					t.Errorf("direct input: %v, want %v", got, tt.wantDirect)
				}
				if tt.readErr {
					if _, err := p.Read(make([]byte, 10)); err == nil {
						t.Errorf("Read: no error, want the broken stream's")
					}
				}
				p.Close()
			}
			close(hold) // the plugin's side lets go of its connections
			if after := settleFDs(t, before); after > before {
				t.Errorf("%d descriptors open after the session, %d before", after, before)
			}
		})
	}
}

// endingPlugin ends every session stream at once with err after reading
// the first frame, sending nothing (or, with offer, after a Started frame
// that offers a byte channel whose handshake succeeds, before reading the
// host's byte_channel frame).
type endingPlugin struct {
	channelPlugin
	err   error
	offer bool
}

func (s *endingPlugin) Session(stream proto.Environment_SessionServer) error {
	if !s.offer {
		if _, err := stream.Recv(); err != nil {
			return err
		}
		return s.err
	}
	s.afterOffer = func(proto.Environment_SessionServer) error { return s.err }
	return s.channelPlugin.Session(stream)
}

// A plugin that ends a session stream during the session's setup — with
// its own status, or OK where the protocol wants a frame — fails the
// spawn with an error of the protocol's vocabulary: the plugin's status
// (here UNAVAILABLE, ErrUnavailable), or ErrPluginProtocol for a stream
// that ended without one; never a bare io.EOF, which tells the server
// nothing.
func TestSetupStreamEndIsClassified(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		offer bool
		want  error
	}{
		{"status before started", toStatus(ErrUnavailable), false, ErrUnavailable},
		{"ok before started", nil, false, ErrPluginProtocol},
		{"status after the offer", toStatus(ErrUnavailable), true, ErrUnavailable},
		{"ok after the offer", nil, true, ErrPluginProtocol},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &endingPlugin{err: tt.err, offer: tt.offer}
			p.dir = t.TempDir()
			p.onConn = func(c *net.UnixConn, ack []byte) {
				c.Write(ack)
				c.Close()
			}
			c := glueRaw(t, p)
			for i := range 20 { // the host's Send sees the end or not, by timing
				pty, err := c.Spawn(testContext(t), SpawnRequest{SessionID: "s", Size: Size{Cols: 80, Rows: 24}})
				if err == nil {
					_, err = pty.Read(make([]byte, 16))
					pty.Close()
				}
				// A spawn that won the race with the end has its Read
				// tell it: a stream that ended without an exit.
				if errors.Is(err, io.EOF) || !errors.Is(err, tt.want) && !(tt.want == ErrPluginProtocol && errors.Is(err, ErrPluginExited)) {
					t.Fatalf("try %d: %v, want an error wrapping %v", i, err, tt.want)
				}
			}
		})
	}
}

// A StreamOnly client, which asks for no byte channel, never opens one:
// "never on a byte channel", whatever the plugin offers.
func TestStreamOnlyTakesNoOffer(t *testing.T) {
	dialed := make(chan struct{}, 1)
	p := &channelPlugin{dir: t.TempDir(), onConn: func(c *net.UnixConn, ack []byte) {
		dialed <- struct{}{}
		sendAck(c, ack)
		c.Close()
	}}
	c := glueRaw(t, p)
	pty, err := c.StreamOnly().Spawn(testContext(t), SpawnRequest{SessionID: "s", Size: Size{Cols: 80, Rows: 24}})
	if err != nil {
		t.Fatal(err)
	}
	defer pty.Close()
	if UsesByteChannel(pty) {
		t.Error("a StreamOnly session took the byte channel the plugin offered unasked")
	}
	select {
	case <-dialed:
		t.Error("a StreamOnly client connected to a socket the plugin offered unasked")
	case <-time.After(100 * time.Millisecond):
	}
}
