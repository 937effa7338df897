//go:build unix

package rawio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// pipe returns both ends of a pipe, closed when the test ends.
func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func TestConnReadWrite(t *testing.T) {
	a, b := tcpPair(t)
	c := NewConn(a)
	if c == nil {
		t.Fatal("NewConn refused a TCP connection")
	}
	// A read waits in the poller until the bytes come.
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		if err != nil {
			t.Errorf("Read: %v", err)
		}
		got <- buf[:n]
	}()
	time.Sleep(20 * time.Millisecond)
	if _, err := b.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if p := <-got; string(p) != "hello" {
		t.Fatalf("Read got %q, want hello", p)
	}
	// A write of more than the socket holds at once goes out whole.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(big)
		done <- err
	}()
	back, err := io.ReadAll(io.LimitReader(b, int64(len(big))))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(back, big) {
		t.Fatalf("the other end got %d bytes, not the %d written, or not the same", len(back), len(big))
	}
	// The end of the other side's writing is io.EOF.
	b.Close()
	if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read after the peer's close: %d, %v; want 0, io.EOF", n, err)
	}
}

// A write that must wait for a client that reads nothing fails after the
// limit SetWriteWait set, with os.ErrDeadlineExceeded.
func TestConnWriteWait(t *testing.T) {
	a, _ := tcpPair(t)
	c := NewConn(a)
	c.SetWriteWait(100 * time.Millisecond)
	if _, err := c.Write([]byte("small")); err != nil {
		t.Fatalf("small write: %v", err)
	}
	if !c.CanWrite() {
		t.Fatal("CanWrite false on an empty socket")
	}
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		var err error
		chunk := make([]byte, 1<<20)
		// Far more than the socket's buffers, in several writes: the
		// limit holds for them together, not each.
		for i := 0; i < 64 && err == nil; i++ {
			_, err = c.Write(chunk)
		}
		errc <- err
	}()
	var err error
	select {
	case err = <-errc:
	case <-time.After(10 * time.Second):
		t.Fatal("a write to a peer that reads nothing did not give up")
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a write to a peer that reads nothing: %v; want os.ErrDeadlineExceeded", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the writes gave up after %v, not about 100ms", took)
	}
	if c.CanWrite() {
		t.Fatal("CanWrite true on a full socket")
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Fatalf("the error %v (%T) is not a *net.OpError", err, err)
	}
}

// With no limit, a write blocked on a full socket ends when the connection
// is closed.
func TestConnWriteEndsAtClose(t *testing.T) {
	a, _ := tcpPair(t)
	c := NewConn(a)
	done := make(chan error, 1)
	go func() {
		chunk := make([]byte, 1<<20)
		for {
			if _, err := c.Write(chunk); err != nil {
				done <- err
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked write after Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write blocked on a full socket did not end at Close")
	}
}

// A file's FD reads and writes as the file would: nothing there is
// EAGAIN for ReadNow and a wait for Read, a deadline holds, and after
// Close the error is the file's own os.ErrClosed.
func TestFileFD(t *testing.T) {
	r, w := pipe(t) // r is closed below too
	fr, fw := New(r), New(w)
	if fr == nil || fw == nil {
		t.Fatal("New refused the ends of a pipe, which Go makes non-blocking")
	}
	if _, err := fr.ReadNow(make([]byte, 8)); err != syscall.EAGAIN {
		t.Fatalf("ReadNow of an empty pipe: %v; want EAGAIN", err)
	}
	if n, err := fw.WriteNow([]byte("abc")); n != 3 || err != nil {
		t.Fatalf("WriteNow: %d, %v", n, err)
	}
	buf := make([]byte, 8)
	if n, err := fr.Read(buf); err != nil || string(buf[:n]) != "abc" {
		t.Fatalf("Read: %q, %v", buf[:n], err)
	}
	if err := r.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := fr.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline: %v; want os.ErrDeadlineExceeded", err)
	}
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := fr.Read(buf)
		readErr <- err
	}()
	time.Sleep(20 * time.Millisecond)
	r.Close()
	select {
	case err := <-readErr:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Read ended by Close: %v; want os.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a Read waiting on an empty pipe did not end at Close")
	}
	if _, err := fr.ReadNow(buf); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("ReadNow after Close: %v; want os.ErrClosed", err)
	}
}

// A descriptor in blocking mode is never read raw: a raw read of it could
// hold a thread, and the goroutines behind it, for as long as it waits.
func TestNewRefusesBlocking(t *testing.T) {
	var fds [2]int
	if err := unix.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	r := os.NewFile(uintptr(fds[0]), "r") // stays blocking
	w := os.NewFile(uintptr(fds[1]), "w")
	defer r.Close()
	defer w.Close()
	if New(r) != nil {
		t.Fatal("New took a blocking descriptor")
	}
	if c := NewConn(&net.UnixConn{}); c != nil {
		t.Fatal("NewConn took a connection with no descriptor")
	}
}

// A descriptor whose open file was switched to blocking mode after New
// (by a process sharing it, say) is never read or written raw: ReadNow and
// WriteNow refuse with ErrBlocking, and Read and Write go through the
// file, so that no raw call can hold a thread the runtime does not know
// is blocked. A raw write to the full pipe below would never return.
func TestBlockingModeLater(t *testing.T) {
	r, w := pipe(t)
	fr, fw := New(r), New(w)
	if fr == nil || fw == nil {
		t.Fatal("New refused the ends of a pipe")
	}
	var wfd int
	rcw, _ := w.SyscallConn()
	rcw.Control(func(fd uintptr) { wfd = int(fd) })
	// Fill the pipe.
	chunk := make([]byte, 4096)
	for {
		if _, err := fw.WriteNow(chunk); err == syscall.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if n, err := WriteNow(wfd, chunk); n != 0 || err != syscall.EAGAIN {
		t.Fatalf("WriteNow of a full pipe: %d, %v; want EAGAIN", n, err)
	}
	setBlocking := func(f *os.File) {
		rc, _ := f.SyscallConn()
		rc.Control(func(fd uintptr) {
			if err := unix.SetNonblock(int(fd), false); err != nil {
				t.Fatal(err)
			}
		})
	}
	setBlocking(w)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if n, err := fw.WriteNow(chunk); n != 0 || err != ErrBlocking {
			t.Errorf("FD.WriteNow to a full pipe in blocking mode: %d, %v; want ErrBlocking", n, err)
		}
		if n, err := WriteNow(wfd, chunk); n != 0 || err != ErrBlocking {
			t.Errorf("WriteNow to a full pipe in blocking mode: %d, %v; want ErrBlocking", n, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		go io.Copy(io.Discard, r) // let the stuck write return, so the test can end
		<-done
		t.Fatal("a write that must not wait waited on a descriptor in blocking mode")
	}
	// Write goes through the file: it waits as the file's own would,
	// until the reader makes room.
	wrote := make(chan error, 1)
	go func() {
		_, err := fw.Write([]byte("after"))
		wrote <- err
	}()
	setBlocking(r)
	if _, err := fr.ReadNow(chunk); err != ErrBlocking {
		t.Fatalf("FD.ReadNow of a pipe in blocking mode: %v; want ErrBlocking", err)
	}
	var got []byte
	buf := make([]byte, 64<<10)
	for !bytes.HasSuffix(got, []byte("after")) {
		n, err := fr.Read(buf)
		if err != nil {
			t.Fatalf("Read of a pipe in blocking mode: %v", err)
		}
		got = append(got, buf[:n]...)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("Write to a pipe in blocking mode: %v", err)
	}
}

// A write that waited and then went through leaves no deadline behind: a
// later write with no limit waits as long as the peer takes.
func TestConnWriteWaitLeavesNoDeadline(t *testing.T) {
	a, b := tcpPair(t)
	// Small buffers, so that the writes below must wait for the reader.
	a.(*net.TCPConn).SetWriteBuffer(16 << 10)
	b.(*net.TCPConn).SetReadBuffer(16 << 10)
	c := NewConn(a)
	const size = 4 << 20 // more than the buffers hold
	fill := func(limit time.Duration, readAfter time.Duration) error {
		c.SetWriteWait(limit)
		defer c.SetWriteWait(0)
		read := make(chan struct{})
		go func() {
			defer close(read)
			time.Sleep(readAfter)
			if _, err := io.ReadFull(b, make([]byte, size)); err != nil {
				t.Errorf("the reader: %v", err)
			}
		}()
		_, err := c.Write(make([]byte, size))
		<-read // the reader took this write's bytes and no more
		return err
	}
	if err := fill(5*time.Second, 50*time.Millisecond); err != nil {
		t.Fatalf("a write that waited 50ms within 5s: %v", err)
	}
	start := time.Now()
	if err := fill(0, 6*time.Second); err != nil {
		t.Fatalf("a write with no limit, waiting longer than the earlier limit: %v", err)
	}
	if took := time.Since(start); took < 6*time.Second {
		t.Fatalf("the write took %v: it never waited for the reader, and tested nothing", took)
	}
}

// ReadNext after a Read that found the file in blocking mode (and read
// through the file) checks the mode, as ReadNow does: it must not read
// raw from a file in blocking mode with nothing there.
func TestReadNextAfterBlockingRead(t *testing.T) {
	r, w := pipe(t)
	fr := New(r)
	if _, err := w.Write(make([]byte, 2000)); err != nil {
		t.Fatal(err)
	}
	rc, _ := r.SyscallConn()
	rc.Control(func(fd uintptr) { unix.SetNonblock(int(fd), false) })
	buf := make([]byte, 4096)
	if n, err := fr.Read(buf); n != 2000 || err != nil {
		t.Fatalf("Read: %d, %v", n, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := fr.ReadNext(buf)
		done <- err
	}()
	select {
	case err := <-done:
		if err != ErrBlocking {
			t.Fatalf("ReadNext of an empty pipe in blocking mode: %v; want ErrBlocking", err)
		}
	case <-time.After(10 * time.Second):
		w.Write([]byte("x")) // let the stuck read return, so the test can end
		<-done
		t.Fatal("ReadNext read raw, and waited, on a pipe in blocking mode")
	}
}

// A file switched to blocking mode, full, between WriteNow's check and its
// write — what a hostile plugin can do to the terminal it hands the host —
// blocks that write and its thread only: a garbage collection meanwhile
// completes. A raw write held the whole process until the file drained.
func TestWriteNowSwitchedToBlocking(t *testing.T) {
	r, w := pipe(t)
	wfd := int(w.Fd()) // Fd leaves it in blocking mode; the test sets it
	if err := unix.SetNonblock(wfd, true); err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4096)
	for {
		if _, err := unix.Write(wfd, junk); errors.Is(err, unix.EAGAIN) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	testHookChecked = func(fd int) { _ = unix.SetNonblock(fd, false) }
	t.Cleanup(func() { testHookChecked = func(int) {} })
	wrote := make(chan error, 1)
	go func() {
		_, err := WriteNow(wfd, []byte("x"))
		wrote <- err
	}()
	time.Sleep(100 * time.Millisecond) // the write is blocked by now
	select {
	case err := <-wrote:
		t.Fatalf("WriteNow returned %v on a full pipe in blocking mode", err)
	default:
	}
	// Another process drains the pipe, later: a process whose every
	// goroutine is stopped cannot.
	drain := exec.Command("/bin/sh", "-c", "sleep 3; exec cat >/dev/null")
	drain.Stdin = r
	if err := drain.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = drain.Process.Kill(); _ = drain.Wait() }()
	start := time.Now()
	runtime.GC()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a garbage collection took %v, waiting for the blocked write", took)
	}
	select {
	case err := <-wrote:
		if err != nil {
			t.Errorf("WriteNow after the drain: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("WriteNow still blocked after the drain")
	}
}

// Reads, writes and CanWrite allocate nothing: a keystroke's echo makes
// several of each in every process, and what they allocated was most of
// what a keystroke cost the core, a garbage collection every few thousand
// keystrokes.
func TestNoAllocations(t *testing.T) {
	r, w := pipe(t)
	fr, fw := New(r), New(w)
	a, b := tcpPair(t)
	ca, cb := NewConn(a), NewConn(b)
	ca.SetWriteWait(time.Second)
	key, buf := []byte("k"), make([]byte, 8)
	for name, f := range map[string]func() error{
		"file": func() error {
			if _, err := fw.WriteNow(key); err != nil {
				return err
			}
			if _, err := fr.Read(buf); err != nil {
				return err
			}
			if _, err := fw.Write(key); err != nil {
				return err
			}
			if _, err := fr.ReadNow(buf); err != nil {
				return err
			}
			if _, err := fr.ReadNext(buf); err != syscall.EAGAIN {
				return fmt.Errorf("ReadNext of an empty pipe: %v", err)
			}
			if !fw.CanWrite() {
				return errors.New("CanWrite false on an empty pipe")
			}
			return nil
		},
		"conn": func() error {
			if _, err := ca.Write(key); err != nil {
				return err
			}
			if _, err := cb.Read(buf); err != nil {
				return err
			}
			if !ca.CanWrite() {
				return errors.New("CanWrite false on an empty socket")
			}
			return nil
		},
	} {
		var ferr error
		allocs := testing.AllocsPerRun(200, func() {
			if err := f(); err != nil && ferr == nil {
				ferr = err
			}
		})
		if ferr != nil {
			t.Fatalf("%s: %v", name, ferr)
		}
		if allocs != 0 {
			t.Errorf("%s: %v allocations per round, want none", name, allocs)
		}
	}
}
