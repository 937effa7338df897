//go:build unix

package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBlocking is what a read or write that must not wait returns when its
// descriptor was found in blocking mode: whoever shares the open file
// turned O_NONBLOCK off. Nothing was read or written.
var ErrBlocking = errors.New("the descriptor is in blocking mode")

// FD is a non-blocking descriptor that Go's poller watches (a socket's or a
// terminal's), read and written with raw calls, waiting in the poller only
// when it must. Its methods may be called as the *os.File's or net.Conn's
// it came from: a Read beside a Write, one Read at a time.
//
// A file's mode belongs to the open file, which other processes may share
// (a terminal's master handed over a socket) and switch to blocking mode
// (os.File.Fd does): a raw call on it would then hold its thread without
// the runtime knowing, and the whole process at the next collection. So
// a file's mode is checked before each raw call (ReadNext excepted), and
// once it is blocking, Read and Write go through the file as it would
// (ReadNow and WriteNow refuse with ErrBlocking). A socket is read and
// written with MSG_DONTWAIT, which never waits whatever its mode.
type FD struct {
	rc syscall.RawConn
	// file, if set, is the file the descriptor is: once it is closed, a
	// read or write fails as the file's own would (os.ErrClosed), and
	// once it is in blocking mode Read and Write go through it.
	file   *os.File
	socket bool // read and written with recv and send
	// readRaw is set while the last Read read raw, having found the
	// file non-blocking: ReadNext relies on it. Only Read, of which
	// there is one at a time, and ReadNext use it.
	readRaw bool
}

// New returns c's descriptor as an FD; nil if it is neither a socket nor
// an *os.File, or not in non-blocking mode: the caller then uses c itself.
func New(c syscall.Conn) *FD {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	var nb, sock bool
	if err := rc.Control(func(fd uintptr) {
		nb = nonBlocking(int(fd))
		var st unix.Stat_t
		sock = unix.Fstat(int(fd), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK
	}); err != nil || !nb {
		return nil
	}
	f, _ := c.(*os.File)
	if f == nil && !sock {
		return nil
	}
	return &FD{rc: rc, file: f, socket: sock && socketsRaw}
}

// readNow makes one raw read of fd, or says it must not (blocking).
func (f *FD) readNow(fd int, p []byte) (int, bool, error) { return f.now(fd, p, recv, read, true) }

// readUnchecked makes one raw read of fd without checking a file's mode.
func (f *FD) readUnchecked(fd int, p []byte) (int, bool, error) {
	return f.now(fd, p, recv, read, false)
}

// writeNow makes one raw write to fd, or says it must not (blocking).
func (f *FD) writeNow(fd int, p []byte) (int, bool, error) { return f.now(fd, p, send, write, true) }

// now makes one raw call with p on fd: onSocket on a socket, onFile on a
// file, in non-blocking mode if check is set: on a file in blocking mode
// it then calls nothing and says so.
func (f *FD) now(fd int, p []byte, onSocket, onFile func(int, []byte) (int, error), check bool) (n int, blocking bool, err error) {
	if f.socket {
		n, err = onSocket(fd, p)
		return n, false, err
	}
	if check && !nonBlocking(fd) {
		return 0, true, nil
	}
	n, err = onFile(fd, p)
	return n, false, err
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
	blocking := false
	err := f.rc.Read(func(fd uintptr) bool {
		n, blocking, errno = f.readNow(int(fd), p)
		return blocking || errno != syscall.EAGAIN
	})
	f.readRaw = err == nil && !blocking
	switch {
	case err != nil:
		return 0, f.pollError(err)
	case blocking && f.file == nil:
		return 0, ErrBlocking
	case blocking:
		return f.file.Read(p)
	case errno != nil:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// ReadNow makes one read(2) without waiting: syscall.EAGAIN (bare) if
// nothing is there, ErrBlocking if the descriptor is in blocking mode.
func (f *FD) ReadNow(p []byte) (int, error) { return f.once(f.rc.Read, f.readNow, p) }

// ReadNext is ReadNow for a read that follows, within microseconds, a
// Read that returned bytes (gathering what a flood left): if that Read
// read raw, having found the mode non-blocking, ReadNext does not check it
// again, one system call fewer per read; otherwise it is ReadNow. Were
// the mode switched in between, and nothing there, the read would wait
// for the next bytes without the runtime knowing.
func (f *FD) ReadNext(p []byte) (int, error) {
	if !f.readRaw {
		return f.ReadNow(p)
	}
	return f.once(f.rc.Read, f.readUnchecked, p)
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
	blocking := false
	err := f.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, b, err := f.writeNow(int(fd), p[n:])
			switch {
			case b:
				blocking = true
				return true
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
	switch {
	case err != nil:
		return n, f.pollError(err)
	case blocking && f.file == nil:
		return n, ErrBlocking
	case blocking:
		m, err := f.file.Write(p[n:])
		return n + m, err
	}
	return n, errno
}

// WriteNow makes one write(2) of p without waiting and returns what it
// took: 0 and syscall.EAGAIN (bare) if the descriptor is full, ErrBlocking
// if it is in blocking mode.
func (f *FD) WriteNow(p []byte) (int, error) { return f.once(f.rc.Write, f.writeNow, p) }

// once makes one call of op (readNow or writeNow) with p on the
// descriptor, held through use (the raw connection's Read or Write),
// without waiting.
func (f *FD) once(use func(func(uintptr) bool) error, op func(int, []byte) (int, bool, error), p []byte) (int, error) {
	var n int
	var errno error
	blocking := false
	if err := use(func(fd uintptr) bool {
		n, blocking, errno = op(int(fd), p)
		return true
	}); err != nil {
		return 0, f.pollError(err)
	}
	if blocking {
		return 0, ErrBlocking
	}
	return n, errno
}

// WriteNow makes one write(2) of p to fd, a descriptor outside Go's
// poller, without waiting: syscall.EAGAIN (bare) if it is full,
// ErrBlocking if it is in blocking mode, which whoever shares its open
// file may have switched it to.
//
// Unlike the rest of the package, the write is an ordinary system call:
// fd's open file is shared with a process that is not trusted (the
// terminal a plugin hands the host), which can switch it to blocking
// mode between the check and the write, with the terminal full. The
// write then blocks one thread, which the runtime knows of, not the
// whole process at the next garbage collection.
func WriteNow(fd int, p []byte) (int, error) { return checkedWrite(fd, p, ordinaryWrite) }

// WriteNowRaw is WriteNow with a raw write(2), which a keystroke's way
// prefers (see the package's doc): for a descriptor whose open file only
// trusted processes share, none of which switches it to blocking mode
// while it is full.
func WriteNowRaw(fd int, p []byte) (int, error) { return checkedWrite(fd, p, write) }

// checkedWrite writes p to fd with w once fd is found in non-blocking
// mode.
func checkedWrite(fd int, p []byte, w func(int, []byte) (int, error)) (int, error) {
	if !nonBlocking(fd) {
		return 0, ErrBlocking
	}
	testHookChecked(fd)
	return w(fd, p)
}

// ordinaryWrite is write(2) as Go's syscall package makes it, telling
// the runtime that it may block; 0 on error, as write.
func ordinaryWrite(fd int, p []byte) (int, error) {
	n, err := syscall.Write(fd, p)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// testHookChecked runs in checkedWrite between the mode's check and the
// write; tests set it.
var testHookChecked = func(int) {}

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

// Conn is a net.Conn whose Read and Write are an FD's. The Writes after a
// SetWriteWait may wait for room, together, at most the time it set,
// counted from the first of them that must wait: that one arms the
// connection's write deadline, and a write that need not wait arms no
// timer (a timer armed for each write of a connection wakes one of the
// runtime's threads to watch it, in the middle of a keystroke's echo).
type Conn struct {
	net.Conn
	fd   *FD
	wait atomic.Int64 // time.Duration; 0: no limit
	// since is when the first Write since SetWriteWait had to wait, in
	// Unix nanoseconds; 0: none has.
	since atomic.Int64
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

// Write writes all of p. If the writes since SetWriteWait must wait for
// room longer than it set, it fails with os.ErrDeadlineExceeded, and the
// connection, part of p written, is of no more use.
func (c *Conn) Write(p []byte) (int, error) {
	armed := false
	n, err := c.fd.write(p, func() {
		d := time.Duration(c.wait.Load())
		if d <= 0 || armed {
			return
		}
		armed = true
		since := c.since.Load()
		if since == 0 {
			since = time.Now().UnixNano()
			c.since.Store(since)
		}
		_ = c.Conn.SetWriteDeadline(time.Unix(0, since).Add(d))
	})
	if armed {
		_ = c.Conn.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

// SetWriteWait sets how long the Writes from now on may wait for room in
// all; 0: as long as they take. Call it before the writes of one message,
// not beside them.
func (c *Conn) SetWriteWait(d time.Duration) {
	c.wait.Store(int64(d))
	c.since.Store(0)
}

// CanWrite reports whether the connection takes a small write now
// (FD.CanWrite).
func (c *Conn) CanWrite() bool { return c.fd.CanWrite() }

// opError dresses a bare error as the connection's *net.OpError; the
// poller's own errors come dressed already.
func (c *Conn) opError(op string, err error) error {
	if _, ok := err.(*net.OpError); ok {
		return err
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
