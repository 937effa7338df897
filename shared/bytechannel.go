package shared

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// A byte channel carries one session's bytes between host and plugin on a
// connection of its own, a Unix socket beside the session stream, instead
// of in the stream's messages. Output is written as it is read, with no
// framing, no encryption and no goroutine between the socket and the
// host's reader; gRPC keeps the control: the spawn or attach, the exit
// frame and every error. The session stream's comments in
// proto/environment.proto give the protocol; this file has its pieces
// both sides share.
//
// Trust: the socket lies in a directory only the plugin's user can enter
// (0700), and a connection serves a session only once it has written that
// session's one-time token, which the host received on the session stream
// (go-plugin's mTLS connection). The plugin answers with an acknowledgement
// the host also received there, so the host never takes another socket's
// bytes for the session's output.

const (
	// channelIDSize and channelSecretSize make up a token: an id that
	// names the offer, and a secret compared in constant time.
	channelIDSize     = 8
	channelSecretSize = 32
	channelTokenSize  = channelIDSize + channelSecretSize
	// channelAckSize is the size of the plugin's acknowledgement.
	channelAckSize = 16

	// channelHandshakeTimeout bounds each side's part of the handshake:
	// the host's dial and token, the plugin's wait for the connection.
	channelHandshakeTimeout = 5 * time.Second

	// channelSocketName is the socket's name in its private directory.
	channelSocketName = "bytes.sock"
	// channelDirPattern names the private directories, in os.TempDir():
	// os.MkdirTemp's pattern, which puts decimal digits for the star.
	channelDirPattern = "ptyhost-channel-*"

	// maxUnixPath is the longest socket path Linux and the BSDs take.
	maxUnixPath = 100
)

// Input frame types on a byte channel, host to plugin.
const (
	channelInput  byte = 1
	channelResize byte = 2
)

// channelHeaderSize is an input frame's header: its type and the payload's
// length, 4 bytes big-endian.
const channelHeaderSize = 5

// sweepOnce removes the channel directories of plugins that did not stop
// cleanly (sweepChannelDirs), once per process, at its first channel.
var sweepOnce sync.Once

// channelListener is a plugin's byte-channel socket and the offers it
// waits to be taken up. The socket exists only while an offer is open:
// the first offer makes it (in a new private directory), the last one
// taken or withdrawn removes it, so an idle plugin holds no socket, file
// or goroutine for it.
type channelListener struct {
	logger interface{ Debug(string, ...any) }

	mu sync.Mutex
	// mu protects the following.
	failed bool // a socket could not be made: no more tries
	closed bool // close was called: no more offers
	dir    string
	ln     *net.UnixListener
	offers map[uint64]*channelOffer
}

// channelOffer is one session stream's offer of a byte channel: the token
// a connection must present, the acknowledgement it gets, and where the
// accepted connection goes.
type channelOffer struct {
	id     uint64
	secret [channelSecretSize]byte
	ack    [channelAckSize]byte
	conn   chan *net.UnixConn // buffered: the acceptor never waits
	// input, if not nil, is the session's terminal, sent with the
	// acknowledgement for the host to write input to (direct_input).
	input *os.File
	// withdrawn is set, under the listener's mu, by withdraw: a
	// connection the handshake took for the offer is closed, not handed
	// over to nobody.
	withdrawn bool
}

// token is what the host writes first on the connection.
func (o *channelOffer) token() []byte {
	t := make([]byte, channelTokenSize)
	binary.BigEndian.PutUint64(t, o.id)
	copy(t[channelIDSize:], o.secret[:])
	return t
}

// offer makes a new offer and returns it with the socket's address, or
// nil if the plugin cannot serve byte channels (no socket could be made,
// or the listener was closed): the stream then carries the bytes. input,
// if not nil, goes with the acknowledgement (channelOffer.input).
func (l *channelListener) offer(input *os.File) (*channelOffer, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.failed {
		return nil, ""
	}
	if l.ln == nil {
		if err := l.listen(); err != nil {
			l.failed = true
			l.logger.Debug("no byte channels: sessions' bytes go on their streams", "error", err)
			return nil, ""
		}
	}
	o := &channelOffer{conn: make(chan *net.UnixConn, 1), input: input}
	var id [channelIDSize]byte
	for {
		rand.Read(id[:])
		o.id = binary.BigEndian.Uint64(id[:])
		if _, dup := l.offers[o.id]; !dup {
			break
		}
	}
	rand.Read(o.secret[:])
	rand.Read(o.ack[:])
	l.offers[o.id] = o
	return o, l.ln.Addr().String()
}

// listen makes the private directory and the socket, and starts accepting.
// mu must be held.
func (l *channelListener) listen() error {
	// Plugins killed before they removed their directories left them
	// behind: the first channel of a process removes those.
	sweepOnce.Do(func() { go sweepChannelDirs(os.TempDir(), time.Now()) })
	dir, err := os.MkdirTemp("", channelDirPattern)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, channelSocketName)
	if len(path) > maxUnixPath {
		os.Remove(dir)
		return fmt.Errorf("socket path %q is longer than %d bytes; set TMPDIR to a shorter directory", path, maxUnixPath)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.Remove(dir)
		return err
	}
	l.dir, l.ln = dir, ln
	if l.offers == nil {
		l.offers = make(map[uint64]*channelOffer)
	}
	go l.accept(ln)
	return nil
}

// unlisten closes the socket and removes its directory once no offer is
// open, or with all. mu must be held.
func (l *channelListener) unlisten(all bool) {
	if l.ln == nil || (len(l.offers) > 0 && !all) {
		return
	}
	l.ln.Close()
	os.RemoveAll(l.dir)
	l.ln, l.dir = nil, ""
}

// accept hands every connection to a handshake of its own, so that a
// connection that writes nothing holds nobody up, until ln is closed.
func (l *channelListener) accept(ln *net.UnixListener) {
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				l.logger.Debug("byte channel listener stopped", "error", err)
			}
			return
		}
		go l.handshake(c)
	}
}

// handshake reads a token and, if it is an open offer's, takes the offer
// (a token is good once), writes the offer's acknowledgement and hands the
// connection over. Anything else closes the connection.
func (l *channelListener) handshake(c *net.UnixConn) {
	var tok [channelTokenSize]byte
	_ = c.SetDeadline(time.Now().Add(channelHandshakeTimeout))
	if _, err := io.ReadFull(c, tok[:]); err != nil {
		c.Close()
		return
	}
	id := binary.BigEndian.Uint64(tok[:channelIDSize])
	l.mu.Lock()
	o := l.offers[id]
	ok := o != nil && subtle.ConstantTimeCompare(o.secret[:], tok[channelIDSize:]) == 1
	if ok {
		delete(l.offers, id)
		l.unlisten(false)
	}
	l.mu.Unlock()
	if !ok {
		l.logger.Debug("byte channel connection refused: unknown token")
		c.Close()
		return
	}
	if err := writeAck(c, o.ack[:], o.input); err != nil {
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	l.mu.Lock()
	defer l.mu.Unlock()
	if o.withdrawn {
		c.Close() // the stream gave up on it meanwhile
		return
	}
	o.conn <- c
}

// withdraw ends o: a connection that comes for it later is refused, and one
// that came already is closed.
func (l *channelListener) withdraw(o *channelOffer) {
	l.mu.Lock()
	o.withdrawn = true
	if l.offers[o.id] == o {
		delete(l.offers, o.id)
		l.unlisten(false)
	}
	l.mu.Unlock()
	select {
	case c := <-o.conn:
		c.Close()
	default:
	}
}

// close removes the socket and its directory for good. Byte channels
// already open go on; later streams carry their bytes themselves.
func (l *channelListener) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.unlisten(true)
}

// dialChannel opens the byte channel a Started frame offered: it connects,
// writes the token and checks the plugin's acknowledgement, within
// channelHandshakeTimeout and ctx. With wantInput it also takes the
// terminal the plugin may send with the acknowledgement (direct_input),
// else input is nil.
func dialChannel(ctx context.Context, address string, token, ack []byte, wantInput bool) (conn *net.UnixConn, input *directInput, err error) {
	if !filepath.IsAbs(address) || len(address) > maxUnixPath {
		return nil, nil, fmt.Errorf("byte channel address %q is not an absolute socket path", address)
	}
	if len(token) != channelTokenSize || len(ack) != channelAckSize {
		return nil, nil, fmt.Errorf("byte channel token of %d bytes and acknowledgement of %d, want %d and %d",
			len(token), len(ack), channelTokenSize, channelAckSize)
	}
	deadline := time.Now().Add(channelHandshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	d := net.Dialer{Deadline: deadline}
	nc, err := d.DialContext(ctx, "unix", address)
	if err != nil {
		return nil, nil, err
	}
	c := nc.(*net.UnixConn)
	_ = c.SetDeadline(deadline)
	var got [channelAckSize]byte
	if _, err := c.Write(token); err != nil {
		c.Close()
		return nil, nil, err
	}
	fds, err := readAck(c, got[:])
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("byte channel handshake: %w", err)
	}
	if subtle.ConstantTimeCompare(got[:], ack) != 1 {
		c.Close()
		closeFDs(fds)
		return nil, nil, errors.New("byte channel handshake: the socket is not the plugin's")
	}
	_ = c.SetDeadline(time.Time{})
	return c, takeInput(fds, wantInput), nil
}

// inputHeader fills h as the header of an input frame of type typ with n
// bytes of payload, and returns it.
func inputHeader(h *[channelHeaderSize]byte, typ byte, n int) []byte {
	h[0] = typ
	binary.BigEndian.PutUint32(h[1:], uint32(n))
	return h[:]
}

// resizePayload is a resize frame's payload.
func resizePayload(size Size) []byte {
	var p [4]byte
	binary.BigEndian.PutUint16(p[:2], size.Cols)
	binary.BigEndian.PutUint16(p[2:], size.Rows)
	return p[:]
}

// readInputFrame reads one input frame from r into buf (grown as needed)
// and returns its type and payload. A frame larger than MaxFrameSize, or a
// resize of the wrong size, is an error: the host broke the protocol.
func readInputFrame(r io.Reader, buf []byte) (typ byte, payload, grown []byte, err error) {
	var h [channelHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, buf, err
	}
	typ, n := h[0], binary.BigEndian.Uint32(h[1:])
	switch {
	case typ != channelInput && typ != channelResize:
		return 0, nil, buf, fmt.Errorf("%w: byte channel frame of type %d", ErrInvalidArgument, typ)
	case n > MaxFrameSize:
		return 0, nil, buf, fmt.Errorf("%w: byte channel frame of %d bytes, more than %d", ErrInvalidArgument, n, MaxFrameSize)
	case typ == channelResize && n != 4:
		return 0, nil, buf, fmt.Errorf("%w: resize frame of %d bytes, want 4", ErrInvalidArgument, n)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, max(int(n), 512))
	}
	payload = buf[:n]
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, buf, err
	}
	return typ, payload, buf, nil
}

// sizeFromPayload decodes a resize frame's payload.
func sizeFromPayload(p []byte) Size {
	return Size{Cols: binary.BigEndian.Uint16(p[:2]), Rows: binary.BigEndian.Uint16(p[2:])}
}
