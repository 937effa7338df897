//go:build unix

package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
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

	// r, w and ctl hold the raw call under way: reads', writes' and
	// CanWrite's, each made at its kind's first call (an idle session's
	// descriptors are only read, or only written). A function handed to
	// the raw connection escapes, so a closure per call would be
	// allocated per call, several per keystroke, and with them the
	// garbage collections that stall a keystroke's echo. Each one's lock
	// has the calls of its kind take turns, as the runtime's own lock of
	// the descriptor has reads and writes take turns anyway.
	r, w, ctl atomic.Pointer[call]
}

// call is one raw call's arguments and results, and fn, the function the
// raw connection runs for it, bound to it once.
type call struct {
	mu sync.Mutex
	f  *FD
	fn func(fd uintptr) bool
	// control is fn as Control takes it, for CanWrite's call; made at
	// its first.
	control func(fd uintptr)

	kind     callKind
	p        []byte
	n        int
	blocking bool  // the file was found in blocking mode
	errno    error // the system call's
	// waiting, for a write, runs each time the write must wait, until it
	// reports that it armed the write's bound (armed).
	waiting func() bool
	armed   bool
	ok      bool // CanWrite's answer
}

// callKind says what a call's fn does.
type callKind uint8

const (
	readWaiting   callKind = iota // Read: one read, again after the poller while nothing is there
	readOnce                      // ReadNow: one read
	readUnchecked                 // ReadNext: one read, the mode not checked
	writeAll                      // Write: writes until all of p is taken
	writeOnce                     // WriteNow: one write
	canWriteNow                   // CanWrite
)

// run makes c's system calls on fd, as c.kind says; the raw connection
// calls it (as c.fn) and waits in the poller while it returns false.
func (c *call) run(fd uintptr) bool {
	f := c.f
	switch c.kind {
	case readWaiting:
		c.n, c.blocking, c.errno = f.now(int(fd), c.p, recv, read, true)
		return c.blocking || c.errno != syscall.EAGAIN
	case readOnce:
		c.n, c.blocking, c.errno = f.now(int(fd), c.p, recv, read, true)
	case readUnchecked:
		c.n, c.blocking, c.errno = f.now(int(fd), c.p, recv, read, false)
	case writeOnce:
		c.n, c.blocking, c.errno = f.now(int(fd), c.p, send, write, true)
	case writeAll:
		return c.writeAll(fd)
	case canWriteNow:
		c.ok = canWrite(int(fd))
	}
	return true
}

// writeAll writes c.p from c.n on; false when it must wait for room.
func (c *call) writeAll(fd uintptr) bool {
	for c.n < len(c.p) {
		m, b, err := c.f.now(int(fd), c.p[c.n:], send, write, true)
		switch {
		case b:
			c.blocking = true
			return true
		case err == syscall.EAGAIN:
			if c.waiting != nil && !c.armed {
				c.armed = c.waiting()
			}
			return false
		case err != nil:
			c.errno = os.NewSyscallError("write", err)
			return true
		case m == 0:
			c.errno = io.ErrUnexpectedEOF
			return true
		}
		c.n += m
	}
	return true
}

// callIn returns the call held in p, made at the first use.
func (f *FD) callIn(p *atomic.Pointer[call]) *call {
	if c := p.Load(); c != nil {
		return c
	}
	c := &call{f: f}
	c.fn = c.run
	if p.CompareAndSwap(nil, c) {
		return c
	}
	return p.Load()
}

// begin takes c for a call of kind with p; end gives it back.
func (c *call) begin(kind callKind, p []byte) {
	c.mu.Lock()
	c.kind, c.p = kind, p
	c.n, c.blocking, c.errno, c.armed = 0, false, nil, false
}

func (c *call) end() {
	c.p, c.errno = nil, nil // keep no caller's buffer
	c.mu.Unlock()
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
	c := f.callIn(&f.r)
	c.begin(readWaiting, p)
	err := f.rc.Read(c.fn)
	n, blocking, errno := c.n, c.blocking, c.errno
	c.end()
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
func (f *FD) ReadNow(p []byte) (int, error) { return f.once(f.callIn(&f.r), f.rc.Read, readOnce, p) }

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
	return f.once(f.callIn(&f.r), f.rc.Read, readUnchecked, p)
}

// Write writes all of p, waiting in the poller while the descriptor is
// full.
func (f *FD) Write(p []byte) (int, error) {
	n, _, err := f.write(p, nil)
	return n, err
}

// write writes all of p. waiting, if set, runs each time the write must
// wait until it returns true, which write then returns as armed.
func (f *FD) write(p []byte, waiting func() bool) (n int, armed bool, err error) {
	c := f.callIn(&f.w)
	c.begin(writeAll, p)
	c.waiting = waiting
	err = f.rc.Write(c.fn)
	n, armed, blocking, errno := c.n, c.armed, c.blocking, c.errno
	c.waiting = nil
	c.end()
	switch {
	case err != nil:
		return n, armed, f.pollError(err)
	case blocking && f.file == nil:
		return n, armed, ErrBlocking
	case blocking:
		m, err := f.file.Write(p[n:])
		return n + m, armed, err
	}
	return n, armed, errno
}

// WriteNow makes one write(2) of p without waiting and returns what it
// took: 0 and syscall.EAGAIN (bare) if the descriptor is full, ErrBlocking
// if it is in blocking mode.
func (f *FD) WriteNow(p []byte) (int, error) { return f.once(f.callIn(&f.w), f.rc.Write, writeOnce, p) }

// once makes one raw call of kind (a read or a write) with p on the
// descriptor, held through use (the raw connection's Read or Write),
// without waiting.
func (f *FD) once(c *call, use func(func(uintptr) bool) error, kind callKind, p []byte) (int, error) {
	c.begin(kind, p)
	err := use(c.fn)
	n, blocking, errno := c.n, c.blocking, c.errno
	c.end()
	if err != nil {
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
	c := f.callIn(&f.ctl)
	c.begin(canWriteNow, nil)
	c.ok = false
	if c.control == nil {
		c.control = func(fd uintptr) { c.run(fd) }
	}
	_ = f.rc.Control(c.control)
	ok := c.ok
	c.end()
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
	// waitingFn is waiting, bound once: a write calls it.
	waitingFn func() bool
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
	rc := &Conn{Conn: c, fd: fd}
	rc.waitingFn = rc.waiting
	return rc
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
	n, armed, err := c.fd.write(p, c.waitingFn)
	if armed {
		_ = c.Conn.SetWriteDeadline(time.Time{})
	}
	if err != nil {
		err = c.opError("write", err)
	}
	return n, err
}

// waiting arms the connection's write deadline, when a Write must wait
// for room and SetWriteWait set a bound, and reports whether it did.
func (c *Conn) waiting() bool {
	d := time.Duration(c.wait.Load())
	if d <= 0 {
		return false
	}
	since := c.since.Load()
	if since == 0 {
		since = time.Now().UnixNano()
		c.since.Store(since)
	}
	_ = c.Conn.SetWriteDeadline(time.Unix(0, since).Add(d))
	return true
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
