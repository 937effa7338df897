//go:build unix

package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
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
// limit SetWriteWait set, with os.ErrDeadlineExceeded; a write that need
// not wait leaves no deadline behind.
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
	var err error
	chunk := make([]byte, 1<<20)
	for i := 0; i < 64 && err == nil; i++ { // far more than the socket's buffers
		_, err = c.Write(chunk)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a write to a peer that reads nothing: %v; want os.ErrDeadlineExceeded", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the write gave up after %v, not about 100ms", took)
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
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
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

func TestRawReadWrite(t *testing.T) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if _, err := Read(fds[0], make([]byte, 4)); err != syscall.EAGAIN {
		t.Fatalf("Read of an empty pipe: %v; want EAGAIN", err)
	}
	if n, err := Write(fds[1], []byte("xy")); n != 2 || err != nil {
		t.Fatalf("Write: %d, %v", n, err)
	}
	buf := make([]byte, 4)
	if n, err := Read(fds[0], buf); n != 2 || err != nil || string(buf[:2]) != "xy" {
		t.Fatalf("Read: %q, %v", buf[:n], err)
	}
	if _, err := Write(-1, []byte("x")); err != syscall.EBADF {
		t.Fatalf("Write to -1: %v; want EBADF", err)
	}
}
