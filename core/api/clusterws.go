package api

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/rawio"
)

// Proxied WebSockets. httputil.ReverseProxy switches protocols itself: it
// hijacks the client's connection and copies bytes both ways, so frames,
// offsets and close codes pass exactly as the owner sent them. What it
// cannot know is that a connection to the owner that ends without a close
// frame means the owner is lost; nor does it watch the owner's lease.
// So the owner's side of the copy is wrapped (nodeConn): it follows the
// frames the owner sends (headers only, never a payload byte), and when
// the owner's connection ends between two frames with no close frame
// sent, it ends the client's stream with a close frame of its own,
// CloseNodeLost "node_lost", as if the owner had sent it. A watcher
// closes the owner's connection when the owner's lease expires (a
// partition may leave the connection open but silent), which ends it the
// same way.
//
// Limits: an owner lost in the middle of a frame leaves the client's
// stream mid-frame, where no close frame can follow; the client sees the
// connection drop (1006), as it would without the proxy. A client that
// does not answer the close within closeGrace is disconnected.

// closeGrace bounds how long a client, once its owner's stream has ended,
// has to answer the close before its connection is closed.
const closeGrace = 5 * time.Second

// nodeLostFrame is the close frame CloseNodeLost "node_lost", as a server
// sends it (unmasked); restartFrame, CloseRestart's, which a client of a
// node that stops gets (the session goes on: it reconnects elsewhere).
var (
	nodeLostFrame = closeFrame(CloseNodeLost, CloseReasonNodeLost)
	restartFrame  = closeFrame(wsproto.CloseRestart, wsproto.CloseReasonRestart)
)

// closeFrame is the close frame of code and reason, as a server sends it.
func closeFrame(code uint16, reason string) []byte {
	payload := binary.BigEndian.AppendUint16(nil, code)
	payload = append(payload, reason...)
	return append([]byte{0x80 | opClose, byte(len(payload))}, payload...)
}

// proxyWebSocket serves the WebSocket upgrade r with p, which proxies it
// to node, watching the node's lease while the connection lasts.
func (h *handler) proxyWebSocket(w http.ResponseWriter, r *http.Request, p *httputil.ReverseProxy, node core.Node) {
	t := &tunnel{}
	p.ModifyResponse = func(res *http.Response) error {
		if rwc, ok := res.Body.(io.ReadWriteCloser); ok && res.StatusCode == http.StatusSwitchingProtocols {
			res.Body = t.switched(rwc)
		}
		return refusedSecret(res)
	}
	ctx, cancel := context.WithCancel(r.Context())
	var wg sync.WaitGroup
	wg.Go(func() { h.watchNode(ctx, node.Name, t) })
	defer wg.Wait()
	defer cancel()
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	h.cl.track(t, srv)
	defer h.cl.untrack(t)
	p.ServeHTTP(&hijackRecorder{ResponseWriter: w, t: t, writeTimeout: h.opts.WriteTimeout}, r)
}

// track records t, open, and has srv's shutdown end it (restartTunnels):
// the server does not track the connections it let go (hijacked). A
// tunnel opened once the shutdown began is ended at once.
func (c *cluster) track(t *tunnel, srv *http.Server) {
	c.tunnelsMu.Lock()
	defer c.tunnelsMu.Unlock()
	if c.tunnels == nil {
		c.tunnels, c.servers = map[*tunnel]struct{}{}, map[*http.Server]bool{}
	}
	c.tunnels[t] = struct{}{}
	if srv == nil {
		return
	}
	switch stopping, seen := c.servers[srv]; {
	case stopping:
		t.restart()
	case !seen:
		c.servers[srv] = false
		srv.RegisterOnShutdown(func() { c.restartTunnels(srv) })
	}
}

func (c *cluster) untrack(t *tunnel) {
	c.tunnelsMu.Lock()
	delete(c.tunnels, t)
	c.tunnelsMu.Unlock()
}

// restartTunnels ends every proxied WebSocket as srv shuts down, with
// CloseRestart: the session goes on on its node, and the client attaches
// again, through another node or this one once it is back.
func (c *cluster) restartTunnels(srv *http.Server) {
	c.tunnelsMu.Lock()
	c.servers[srv] = true
	open := make([]*tunnel, 0, len(c.tunnels))
	for t := range c.tunnels {
		open = append(open, t)
	}
	c.tunnelsMu.Unlock()
	for _, t := range open {
		t.restart()
	}
}

// watchNode checks, every interval, that node name still holds its lease,
// and loses t when it does not, until ctx ends. A registry that cannot be
// read says nothing about the node: the check waits for the next tick.
func (h *handler) watchNode(ctx context.Context, name string, t *tunnel) {
	tick := time.NewTicker(h.cl.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		nodes, err := h.cl.nodes(ctx, h.m)
		if err != nil {
			continue
		}
		healthy := false
		for _, n := range nodes {
			if n.Name == name {
				healthy = n.Healthy
			}
		}
		if !healthy {
			h.log.Warn("the node a proxied client is attached to lost its lease: closing the client", "node", name)
			t.lose()
			return
		}
	}
}

// nodes returns the registry's nodes, read at most once per half
// interval for all the node's proxied connections together.
func (c *cluster) nodes(ctx context.Context, m *core.Manager) ([]core.Node, error) {
	c.mu.Lock()
	if !c.readAt.IsZero() && time.Since(c.readAt) < c.interval/2 {
		nodes := c.read
		c.mu.Unlock()
		return nodes, nil
	}
	c.mu.Unlock()
	nodes, err := m.ListNodes(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.read, c.readAt = nodes, time.Now()
	c.mu.Unlock()
	return nodes, nil
}

// tunnel is one proxied WebSocket: the client's hijacked connection and
// the owner's.
type tunnel struct {
	// mu protects the following.
	mu     sync.Mutex
	client net.Conn
	owner  *nodeConn
	lost   bool
	// restarting: this node stops (restart), not the owner; the client
	// gets restartFrame rather than nodeLostFrame.
	restarting bool
}

// switched wraps the owner's connection, once it has switched protocols.
func (t *tunnel) switched(rwc io.ReadWriteCloser) *nodeConn {
	c := &nodeConn{rwc: rwc, t: t}
	t.mu.Lock()
	t.owner = c
	lost := t.lost
	t.mu.Unlock()
	if lost {
		rwc.Close()
	}
	return c
}

// hijacked records the client's connection.
func (t *tunnel) hijacked(conn net.Conn) {
	t.mu.Lock()
	t.client = conn
	t.mu.Unlock()
}

// lose closes the owner's connection (now, or once it has switched): its
// reader then ends the client's stream with CloseNodeLost.
func (t *tunnel) lose() {
	t.mu.Lock()
	t.lost = true
	owner := t.owner
	t.mu.Unlock()
	if owner != nil {
		owner.rwc.Close()
	}
}

// restart is lose for a node that stops: the client's stream ends with
// CloseRestart.
func (t *tunnel) restart() {
	t.mu.Lock()
	t.restarting = true
	t.mu.Unlock()
	t.lose()
}

// endFrame is the close frame a client gets when the owner's stream ends
// without one.
func (t *tunnel) endFrame() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.restarting {
		return restartFrame
	}
	return nodeLostFrame
}

// ending gives the client closeGrace to answer the close and hang up;
// then the copy of its connection to the owner fails, and the proxy
// closes both.
func (t *tunnel) ending() {
	t.mu.Lock()
	client := t.client
	t.mu.Unlock()
	if client != nil {
		_ = client.SetReadDeadline(time.Now().Add(closeGrace))
	}
}

// nodeConn is the owner's side of a proxied WebSocket: the proxy reads
// what the owner sends from it, and writes what the client sends to it.
// Read is called by one goroutine only, the proxy's copy to the client.
type nodeConn struct {
	rwc    io.ReadWriteCloser
	t      *tunnel
	frames frameScanner
	// pending is the rest of the close frame to pass before the end.
	pending []byte
	ended   bool
}

// Read passes the owner's bytes on as they come. When the owner's stream
// ends (EOF, an error, or lose closing it) between two frames, without a
// close frame, it passes nodeLostFrame, then io.EOF.
func (c *nodeConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.ended {
		return 0, io.EOF
	}
	n, err := c.rwc.Read(p)
	c.frames.scan(p[:n])
	if err == nil {
		return n, nil
	}
	c.ended = true
	if !c.frames.closeSeen && c.frames.atBoundary() {
		c.pending = c.t.endFrame()
	}
	// The client's answer to the close must fail at once, not wait for an
	// owner that is gone: that ends the copy the other way.
	c.rwc.Close()
	c.t.ending()
	if n > 0 {
		return n, nil
	}
	return c.Read(p)
}

// Write passes the client's bytes to the owner.
func (c *nodeConn) Write(p []byte) (int, error) { return c.rwc.Write(p) }

// Close closes the owner's connection.
func (c *nodeConn) Close() error { return c.rwc.Close() }

// CloseWrite passes the client's end of stream to the owner, as the proxy
// does without nodeConn.
func (c *nodeConn) CloseWrite() error {
	if cw, ok := c.rwc.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.rwc.Close()
}

// WebSocket frame header fields (RFC 6455, section 5.2).
const (
	opClose     = 0x8
	maskBit     = 0x80
	len7Mask    = 0x7f
	len16       = 126
	len64       = 127
	maxFrameHdr = 14
)

// frameScanner follows the frames of a WebSocket stream from their
// headers, to know where one ends and whether a close frame was sent.
type frameScanner struct {
	hdr    [maxFrameHdr]byte
	n      int    // header bytes read of the current frame
	remain uint64 // payload bytes left of the current frame
	// closeSeen: a close frame began.
	closeSeen bool
}

// scan follows p, the stream's next bytes.
func (s *frameScanner) scan(p []byte) {
	for len(p) > 0 {
		if s.remain > 0 {
			k := min(uint64(len(p)), s.remain)
			s.remain -= k
			p = p[k:]
			continue
		}
		s.hdr[s.n] = p[0]
		s.n++
		p = p[1:]
		if size, ok := s.header(); ok {
			s.remain = size
			s.n = 0
		}
	}
}

// header reports, once the current frame's header is whole, its payload
// length; it notes a close frame.
func (s *frameScanner) header() (uint64, bool) {
	if s.n < 2 {
		return 0, false
	}
	want := 2
	switch s.hdr[1] & len7Mask {
	case len16:
		want += 2
	case len64:
		want += 8
	}
	if s.hdr[1]&maskBit != 0 {
		want += 4
	}
	if s.n < want {
		return 0, false
	}
	if s.hdr[0]&0x0f == opClose {
		s.closeSeen = true
	}
	switch l := s.hdr[1] & len7Mask; l {
	case len16:
		return uint64(binary.BigEndian.Uint16(s.hdr[2:4])), true
	case len64:
		return binary.BigEndian.Uint64(s.hdr[2:10]), true
	default:
		return uint64(l), true
	}
}

// atBoundary reports whether the stream is between two frames.
func (s *frameScanner) atBoundary() bool { return s.n == 0 && s.remain == 0 }

// hijackRecorder is the ResponseWriter of a proxied WebSocket: it records
// the client's connection when the proxy hijacks it.
type hijackRecorder struct {
	http.ResponseWriter
	t *tunnel
	// writeTimeout bounds each write to the client (Options.WriteTimeout).
	writeTimeout time.Duration
}

// Hijack hijacks the connection and records it. The proxy's copy writes
// to the client through the connection it returns, each write bounded by
// writeTimeout: a client that stops reading is disconnected as on a
// direct attach, rather than holding the copy, and the connection to the
// owner, for good once the owner has dropped it.
func (w *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return conn, brw, err
	}
	w.t.hijacked(conn)
	return boundWrites(conn, w.writeTimeout), brw, nil
}

// boundWrites returns c with each Write bounded by d. A connection whose
// descriptor can be written raw arms its deadline only when a write must
// wait (rawio.Conn), as a direct attach's does; another arms it for every
// write. Either keeps c's CloseWrite, with which the proxy half-closes
// the client when the owner's stream ends, giving it closeGrace to answer
// the close frame (without it, the proxy closes the connection at once).
func boundWrites(c net.Conn, d time.Duration) net.Conn {
	if rc := rawio.NewConn(c); rc != nil {
		return &waitBoundConn{Conn: rc, rc: rc, d: d}
	}
	return &deadlineConn{Conn: c, d: d}
}

// waitBoundConn bounds each Write by d, armed only if it must wait.
type waitBoundConn struct {
	net.Conn
	rc *rawio.Conn
	d  time.Duration
}

func (c *waitBoundConn) Write(p []byte) (int, error) {
	c.rc.SetWriteWait(c.d)
	return c.rc.Write(p)
}

func (c *waitBoundConn) CloseWrite() error { return closeWrite(c.rc.Conn) }

// deadlineConn bounds each Write by d with the connection's deadline.
type deadlineConn struct {
	net.Conn
	d time.Duration
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.d)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *deadlineConn) CloseWrite() error { return closeWrite(c.Conn) }

// closeWrite half-closes c if it can (a TCP or TLS connection does).
func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// Unwrap lets http.ResponseController reach the ResponseWriter's other
// methods.
func (w *hijackRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
