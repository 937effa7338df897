//go:build unix

package shared

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// commandFake serves an environment whose sessions run their command with
// StartCommand; with hide set, its PTYs hide InputTerminal, as a PTY that
// does more with input than write it does.
func commandFake(t *testing.T, hide bool) *GRPCClient {
	t.Helper()
	env := &fakeEnv{spawn: func(_ context.Context, req SpawnRequest) (PTY, error) {
		p, err := StartCommand(exec.Command(req.Command[0], req.Command[1:]...), req.Size)
		if err != nil || !hide {
			return p, err
		}
		return struct{ PTY }{p}, nil
	}}
	c, _ := glue(t, env)
	return c
}

func spawnCommand(ctx context.Context, t *testing.T, c *GRPCClient, script string) *grpcPTY {
	t.Helper()
	p, err := c.Spawn(ctx, SpawnRequest{
		SessionID: fmt.Sprintf("direct-%d", time.Now().UnixNano()), EnvironmentType: "FAKE",
		Command: []string{"/bin/sh", "-c", script}, Size: Size{Cols: 80, Rows: 24},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p.(*grpcPTY)
}

// readUntil reads p until its output holds want.
func readUntil(t *testing.T, p PTY, want string) []byte {
	t.Helper()
	var out []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(out, []byte(want)) {
		n, err := p.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			t.Fatalf("output %q, then %v; want %q", out, err, want)
		}
	}
	return out
}

// directFD is the descriptor p writes input to, -1 if none.
func directFD(p *grpcPTY) int {
	if p.input == nil {
		return -1
	}
	p.input.slot <- struct{}{}
	defer p.input.release()
	return p.input.fd
}

// A host writes a StartCommand session's input to its terminal, and sets
// its size, itself; with frames asked for, or a PTY that does not offer its
// terminal, input and resizes go as frames. Every way, the program reads
// what was typed, and a resize lands before the input typed after it.
func TestDirectInput(t *testing.T) {
	ctx := testContext(t)
	c := commandFake(t, false)
	framesOnly := *c
	framesOnly.inputFrames = true
	for _, tt := range []struct {
		name   string
		c      *GRPCClient
		direct bool
		raw    bool // written with raw system calls
	}{
		{"direct", c, true, false},
		{"direct, trusted", c.TrustInput().(*GRPCClient), true, true},
		{"frames asked for", &framesOnly, false, false},
		{"terminal not offered", commandFake(t, true), false, false},
		{"stream", c.StreamOnly().(*GRPCClient), false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := spawnCommand(ctx, t, tt.c, `echo ready; read line; echo "got:$line"; read x; echo "size:$(stty size)"`)
			if got := directFD(p) >= 0; got != tt.direct {
				t.Fatalf("input written to the terminal: %v, want %v", got, tt.direct)
			}
			if tt.direct && p.input.raw != tt.raw {
				t.Errorf("input written with raw system calls: %v, want %v", p.input.raw, tt.raw)
			}
			readUntil(t, p, "ready")
			if _, err := p.Write([]byte("typed\r")); err != nil {
				t.Fatal(err)
			}
			readUntil(t, p, "got:typed")
			// The size is set before the input that follows it.
			if err := p.Resize(ctx, Size{Cols: 132, Rows: 50}); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Write([]byte("\r")); err != nil {
				t.Fatal(err)
			}
			readUntil(t, p, "size:50 132")
			if err := p.Resize(ctx, Size{Cols: 0, Rows: 50}); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("Resize to 0x50: %v, want ErrInvalidArgument", err)
			}
		})
	}
}

// Input the terminal cannot take at once (the program is not reading) is
// not waited for: the rest goes as frames, and so does all later input,
// and the program reads every byte in order.
func TestDirectInputGivesUpWhenFull(t *testing.T) {
	ctx := testContext(t)
	p := spawnCommand(ctx, t, commandFake(t, false),
		`stty raw -echo; echo ready; sleep 0.5; head -c 300010 | md5sum; echo end`)
	if directFD(p) < 0 {
		t.Fatal("no direct input")
	}
	readUntil(t, p, "ready")
	in := make([]byte, 300000)
	for i := range in {
		in[i] = 'a' + byte(i%26)
	}
	if n, err := p.Write(in); n != len(in) || err != nil {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if directFD(p) >= 0 {
		t.Error("the terminal was not given up, though it could not take 300000 bytes at once")
	}
	if _, err := p.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%x", md5.Sum(append(in, "0123456789"...)))
	readUntil(t, p, want)
}

// A terminal that whoever shares it (the plugin) switched to blocking mode
// is given up for input at the next keystroke, never written raw: a raw
// write to a full terminal in blocking mode would hold its thread without
// the runtime knowing, and the whole host with it at the next collection.
// The keystroke goes as a frame, and the program reads every byte.
func TestDirectInputGivesUpBlockingTerminal(t *testing.T) {
	ctx := testContext(t)
	p := spawnCommand(ctx, t, commandFake(t, false),
		`stty raw -echo; echo ready; sleep 5; grep -o -m1 0123456789; echo end`)
	fd := directFD(p)
	if fd < 0 {
		t.Fatal("no direct input")
	}
	readUntil(t, p, "ready")
	// Fill the terminal while the program sleeps, until a write would
	// wait.
	chunk := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), 40)
	for {
		_, err := unix.Write(fd, chunk)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		t.Fatal(err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := p.Write([]byte("0123456789\n"))
		wrote <- err
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(1500 * time.Millisecond):
		t.Fatal("Write waited on a full terminal in blocking mode")
	}
	if directFD(p) >= 0 {
		t.Error("the terminal in blocking mode was not given up")
	}
	// The keystrokes came after the letters, and whole.
	readUntil(t, p, "0123456789\nend")
}

// A Resize waiting behind input that goes as frames to a program that
// does not read gives up when its context ends (a leaving client's resize
// must not hang); the input arrives once the program reads.
func TestDirectInputResizeHonoursContext(t *testing.T) {
	ctx := testContext(t)
	// The program reads nothing until the test lets it (or, should the
	// Resize not give up, for 10 s), then everything.
	gate := filepath.Join(t.TempDir(), "read")
	p := spawnCommand(ctx, t, commandFake(t, false), fmt.Sprintf(`stty raw -echo; echo ready; i=0; `+
		`while [ ! -e %q ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; head -c 8388608 >/dev/null; echo drained`, gate))
	readUntil(t, p, "ready")
	wrote := make(chan error, 1)
	go func() {
		_, err := p.Write(make([]byte, 8<<20)) // more than the buffers hold
		wrote <- err
	}()
	// Nothing tells from outside when the Write has given the terminal
	// up and waits on frames; either way it holds the terminal's slot,
	// and the Resize must wait for it.
	for deadline := time.Now().Add(10 * time.Second); len(p.input.slot) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the Write did not take the terminal within 10 s")
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Resize(rctx, Size{Cols: 100, Rows: 30}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Resize: %v, want its context's end", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Resize took %v", d)
	}
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Errorf("the Write, once the program read: %v", err)
	}
	readUntil(t, p, "drained")
}

// After Close or Detach the terminal is closed and input fails; input to
// a terminal whose program is gone is dropped, not an error.
func TestDirectInputEnds(t *testing.T) {
	ctx := testContext(t)
	c := commandFake(t, false)

	p := spawnCommand(ctx, t, c, `echo ready; sleep 60`)
	readUntil(t, p, "ready")
	p.Close()
	if _, err := p.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if directFD(p) >= 0 {
		t.Error("the terminal is still open after Close")
	}
	if _, err := p.Read(make([]byte, 1)); err == nil {
		t.Error("Read after Close succeeded")
	}

	p = spawnCommand(ctx, t, c, `echo ready; sleep 60`)
	readUntil(t, p, "ready")
	p.Detach()
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrDetached) {
		t.Errorf("Write after Detach: %v, want ErrDetached", err)
	}
	if directFD(p) >= 0 {
		t.Error("the terminal is still open after Detach")
	}

	p = spawnCommand(ctx, t, c, `exit 0`)
	if directFD(p) < 0 {
		t.Fatal("no direct input")
	}
	if _, err := io.ReadAll(p); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("late\r")); err != nil {
		t.Errorf("Write after the exit: %v, want the input dropped", err)
	}
}

// readAck takes exactly one terminal master, when asked for, and reads the
// acknowledgement whole however it arrives; anything else is refused.
func TestReadAck(t *testing.T) {
	ack := []byte("0123456789abcdef")
	master, tty, err := OpenPTY(Size{Cols: 80, Rows: 24})
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer tty.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	for _, tt := range []struct {
		name   string
		fds    []int
		want   bool
		split  bool
		direct bool
	}{
		{"master", []int{int(master.Fd())}, true, false, true},
		{"master, ack in two writes", []int{int(master.Fd())}, true, true, true},
		{"not asked for", []int{int(master.Fd())}, false, false, false},
		{"a pipe", []int{int(pr.Fd())}, true, false, false},
		{"the terminal's other side", []int{int(tty.Fd())}, true, false, false},
		{"two", []int{int(master.Fd()), int(master.Fd())}, true, false, false},
		{"none", nil, true, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
			if err != nil {
				t.Fatal(err)
			}
			host := socketConn(t, fds[0])
			plugin := socketConn(t, fds[1])
			first := ack
			if tt.split {
				first = ack[:5]
			}
			var oob []byte
			if tt.fds != nil {
				oob = unix.UnixRights(tt.fds...)
			}
			if _, _, err := plugin.WriteMsgUnix(first, oob, nil); err != nil {
				t.Fatal(err)
			}
			if tt.split {
				go func() {
					time.Sleep(10 * time.Millisecond)
					plugin.Write(ack[5:])
				}()
			}
			got := make([]byte, len(ack))
			before := openFDs(t)
			received, err := readAck(host, got)
			if err != nil || !bytes.Equal(got, ack) {
				t.Fatalf("readAck: %q, %v", got, err)
			}
			input := takeInput(received, tt.want)
			if (input != nil) != tt.direct {
				t.Fatalf("terminal taken: %v, want %v", input != nil, tt.direct)
			}
			if input != nil {
				input.close()
			}
			if after := openFDs(t); after != before {
				t.Errorf("%d descriptors open after, %d before: what came was not all closed", after, before)
			}
		})
	}
}

// socketConn makes a *net.UnixConn of fd, closed at cleanup.
func socketConn(t *testing.T, fd int) *net.UnixConn {
	t.Helper()
	f := os.NewFile(uintptr(fd), "socket")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UnixConn)
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// A session whose program never reads, with a large input stuck in the
// plugin's write to its terminal, still closes at once: the kill makes
// the child exit, and its exit ends the write. (Before, the plugin's
// Close waited for the write forever, and the host's for 30 s.)
func TestCloseWithInputStuck(t *testing.T) {
	for _, frames := range []bool{false, true} {
		t.Run(fmt.Sprintf("frames=%v", frames), func(t *testing.T) {
			ctx := testContext(t)
			c := commandFake(t, false)
			if frames {
				framesOnly := *c
				framesOnly.inputFrames = true
				c = &framesOnly
			}
			p := spawnCommand(ctx, t, c, `stty raw -echo; echo ready; exec sleep 600`)
			readUntil(t, p, "ready")
			// More than the terminal and the channel's socket hold: the
			// plugin's write to the terminal blocks.
			wrote := make(chan error, 1)
			go func() {
				_, err := p.Write(make([]byte, 4<<20))
				wrote <- err
			}()
			time.Sleep(300 * time.Millisecond)
			start := time.Now()
			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Close took %v with input stuck, want well under the 30 s timeout", d)
			}
			select {
			case <-wrote:
			case <-time.After(5 * time.Second):
				t.Error("the host's Write did not return after Close")
			}
		})
	}
}

// The direct input's close returns at once while a write holds the
// terminal — one that may never return, on a terminal a hostile plugin
// switched to blocking mode and does not read — and the writer closes the
// descriptor as it lets go. Close and Detach used to wait for it.
func TestDirectInputCloseDoesNotWaitForAWrite(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fd, err := unix.Dup(int(w.Fd()))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	d := newDirectInput(fd)
	d.slot <- struct{}{} // a write in progress
	closed := make(chan struct{})
	go func() { d.close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("close waited for the write")
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || d.fd != fd {
		t.Fatalf("the descriptor was closed under the write: %v", err)
	}
	d.release() // the write ends
	if d.fd != -1 {
		t.Errorf("the descriptor is still open after the write let go")
	}
	// With nothing in progress, close closes at once.
	fd2, err := unix.Dup(int(r.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	d2 := newDirectInput(fd2)
	d2.close()
	if d2.fd != -1 {
		t.Errorf("close left an idle descriptor open")
	}
}

// A close racing a write's release never leaves the descriptor open: the
// release gave the slot back after checking for a close that came in
// between.
func TestDirectInputCloseRacesRelease(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	const rounds = 20000
	left := 0
	for range rounds {
		fd, err := unix.Dup(int(w.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		d := newDirectInput(fd)
		d.slot <- struct{}{} // a write in progress
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { <-start; d.release() })
		wg.Go(func() { <-start; d.close() })
		close(start)
		wg.Wait()
		// Both are done: nobody holds the slot, and the descriptor must
		// be closed.
		if d.fd >= 0 {
			left++
			unix.Close(d.fd)
		}
	}
	if left > 0 {
		t.Errorf("%d of %d closes racing a release left the descriptor open", left, rounds)
	}
}
