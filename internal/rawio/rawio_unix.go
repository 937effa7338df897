//go:build unix

package rawio

import (
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// FD is a non-blocking descriptor that Go's poller watches (a socket's or a
// terminal's), read and written with raw calls, waiting in the poller only
// when it must. Its methods may be called as the *os.File's or net.Conn's
// it came from: a Read beside a Write, one Read at a time.
type FD struct {
	rc syscall.RawConn
	// file, if set, is the file the descriptor is: once it is closed, a
	// read or write fails as the file's own would (os.ErrClosed).
	file *os.File
}

// New returns c's descriptor as an FD; nil if it has none in non-blocking
// mode, whose raw reads could block a thread and the goroutines queued
// behind it. The caller then uses c itself.
func New(c syscall.Conn) *FD {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	nonBlocking := false
	if err := rc.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		nonBlocking = err == nil && fl&unix.O_NONBLOCK != 0
	}); err != nil || !nonBlocking {
		return nil
	}
	f, _ := c.(*os.File)
	return &FD{rc: rc, file: f}
}

// Read reads into p what one read(2) returns, waiting in the poller while
// nothing is there; io.EOF at the end (a read of nothing). A read deadline
// set on the descriptor's file or connection holds.
func (f *FD) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno error
	err := f.rc.Read(func(fd uintptr) bool {
		n, errno = Read(int(fd), p)
		return errno != syscall.EAGAIN
	})
	switch {
	case err != nil:
		return 0, f.pollError(err)
	case errno != nil:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// ReadNow makes one read(2) without waiting: syscall.EAGAIN (bare) if
// nothing is there.
func (f *FD) ReadNow(p []byte) (int, error) {
	var n int
	var errno error
	if err := f.rc.Read(func(fd uintptr) bool {
		n, errno = Read(int(fd), p)
		return true
	}); err != nil {
		return 0, f.pollError(err)
	}
	return n, errno
}

// Write writes all of p, waiting in the poller while the descriptor is
// full.
func (f *FD) Write(p []byte) (int, error) {
	return f.write(p, nil)
}

// write writes all of p; waiting, if set, runs each time it must wait.
func (f *FD) write(p []byte, waiting func()) (int, error) {
	n := 0
	var errno error
	err := f.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, err := Write(int(fd), p[n:])
			switch {
			case err == syscall.EAGAIN:
				if waiting != nil {
					waiting()
				}
				return false
			case err != nil:
				errno = os.NewSyscallError("write", err)
				return true
			case m == 0:
				errno = io.ErrUnexpectedEOF
				return true
			}
			n += m
		}
		return true
	})
	if err != nil {
		return n, f.pollError(err)
	}
	return n, errno
}

// WriteNow makes one write(2) of p without waiting and returns what it
// took: 0 and syscall.EAGAIN (bare) if the descriptor is full.
func (f *FD) WriteNow(p []byte) (int, error) {
	var n int
	var errno error
	if err := f.rc.Write(func(fd uintptr) bool {
		n, errno = Write(int(fd), p)
		return true
	}); err != nil {
		return 0, f.pollError(err)
	}
	return n, errno
}

// CanWrite reports whether the descriptor takes a small write now: its
// buffer has room (POLLOUT).
func (f *FD) CanWrite() bool {
	ok := false
	_ = f.rc.Control(func(fd uintptr) { ok = canWrite(int(fd)) })
	return ok
}

// pollError is the poller's error, err, as the descriptor's file would
// report it: a closed file's is the file's own os.ErrClosed, which a
// read of nothing from it returns. A connection's errors already are a
// connection's.
func (f *FD) pollError(err error) error {
	if f.file != nil && !os.IsTimeout(err) {
		if _, ferr := f.file.Read(nil); ferr != nil {
			return ferr
		}
	}
	return err
}

// Conn is a net.Conn whose Read and Write are an FD's. When a Write must
// wait for room, it waits at most what SetWriteWait last set, arming the
// connection's write deadline then and only then: a write that need not
// wait arms no timer (a timer armed for each write of a connection wakes
// one of the runtime's threads to watch it, in the middle of a
// keystroke's echo).
type Conn struct {
	net.Conn
	fd   *FD
	wait atomic.Int64 // time.Duration; 0: no limit
}

// NewConn returns c as a Conn, or nil if its descriptor cannot be read raw
// (New).
func NewConn(c net.Conn) *Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	fd := New(sc)
	if fd == nil {
		return nil
	}
	return &Conn{Conn: c, fd: fd}
}

// Read reads as the connection's Read does.
func (c *Conn) Read(p []byte) (int, error) {
	n, err := c.fd.Read(p)
	if err != nil && err != io.EOF {
		err = c.opError("read", err)
	}
	return n, err
}

// Write writes all of p. If it must wait for room longer than the limit
// SetWriteWait set, it fails with os.ErrDeadlineExceeded, and the
// connection, part of p written, is of no more use.
func (c *Conn) Write(p []byte) (int, error) {
	armed := false
	n, err := c.fd.write(p, func() {
		if d := time.Duration(c.wait.Load()); d > 0 && !armed {
			armed = true
			_ = c.Conn.SetWriteDeadline(time.Now().Add(d))
		}
	})
	if armed {
		_ = c.Conn.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

// SetWriteWait sets how long a Write may wait for room from now on; 0: as
// long as it takes.
func (c *Conn) SetWriteWait(d time.Duration) { c.wait.Store(int64(d)) }

// CanWrite reports whether the connection takes a small write now
// (FD.CanWrite).
func (c *Conn) CanWrite() bool { return c.fd.CanWrite() }

// SyscallConn returns the connection's raw descriptor.
func (c *Conn) SyscallConn() (syscall.RawConn, error) { return c.fd.rc, nil }

// opError dresses a bare error as the connection's *net.OpError; the
// poller's own errors come dressed already.
func (c *Conn) opError(op string, err error) error {
	if _, ok := err.(*net.OpError); ok {
		return err
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
