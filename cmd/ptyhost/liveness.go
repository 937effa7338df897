package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// An attachment whose server stops answering — stopped with SIGSTOP, or
// a network that drops packets silently — would otherwise go unnoticed:
// the session simply seems quiet. So when nothing has come from the
// server for a third of defaultStallTimeout while attach waits for it,
// attach pings it (a WebSocket ping, which every server answers), and a
// connection from which nothing at all arrives, neither output nor a
// pong, for defaultStallTimeout has stalled: attach closes it and
// reconnects as after any lost connection. The server's own pings (every
// 30 s from ptyhost's) count as activity too, but attach does not rely on
// them: a server embedded with a longer ping interval, or none, is not
// taken for stalled.

// defaultStallTimeout is how long an attachment waits for anything from
// the server.
const defaultStallTimeout = 75 * time.Second

// connWatch follows the network connection of an attachment, one dial
// after the other. A nil *connWatch watches nothing.
type connWatch struct {
	last atomic.Int64 // when the connection last read anything (UnixNano)
	busy atomic.Int32 // > 0 while the reader writes output, not waiting for the network
	// dialed is set once the connection is made through this watch; a
	// client whose transport is not an *http.Transport is not watched.
	dialed atomic.Bool
}

// touch records that the connection is alive now.
func (w *connWatch) touch() { w.last.Store(time.Now().UnixNano()) }

// idle returns how long the connection has waited for the network, or 0
// while the reader is busy elsewhere.
func (w *connWatch) idle() time.Duration {
	if w == nil || w.busy.Load() > 0 || !w.dialed.Load() {
		return 0
	}
	return time.Since(time.Unix(0, w.last.Load()))
}

// writing marks the reader busy writing output until done is called,
// which counts as activity: a terminal slow to take the output is no
// stall of the server's.
func (w *connWatch) writing() (done func()) {
	if w == nil {
		return func() {}
	}
	w.busy.Add(1)
	return func() {
		w.touch()
		w.busy.Add(-1)
	}
}

// httpClient returns base with a transport whose connections report their
// reads to w, for one dial. A base with a transport of its own is
// returned as it is, unwatched.
func (w *connWatch) httpClient(base *http.Client) *http.Client {
	if w == nil || base.Transport != nil {
		return base
	}
	def, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return base
	}
	tr := def.Clone()
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		w.touch()
		w.dialed.Store(true)
		return &watchedConn{Conn: conn, w: w}, nil
	}
	hc := *base
	hc.Transport = tr
	return &hc
}

// watchedConn is a net.Conn whose reads touch its watch.
type watchedConn struct {
	net.Conn
	w *connWatch
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.w.touch()
	}
	return n, err
}

// defaultInputStall is how long one send of what was typed may wait for
// the server to take it. The server takes a client's input no faster
// than the session's program reads it, so a paste larger than what the
// terminal and the connection hold waits on a busy program: the bound is
// long enough for any program that reads at all, and it ends a connection
// that would otherwise hold the detach key, queued behind the paste,
// for good.
const defaultInputStall = 2 * time.Minute

// inputStallError is the connection attach closed because the server took
// nothing typed for within.
type inputStallError struct{ within time.Duration }

func (e inputStallError) Error() string {
	return fmt.Sprintf("the server took nothing typed for %v: the connection has stalled", e.within)
}

// stallError is the connection attach closed because nothing came from
// the server for within.
type stallError struct{ within time.Duration }

func (e stallError) Error() string {
	return fmt.Sprintf("nothing from the server for %v, not even an answer to a ping: the connection has stalled", e.within)
}

// watchStall pings the server over conn, the attachment's connection
// (given, as a.conn is the next one's once serve returns), when it has
// waited a third of a.stall for the server, and closes conn once it has
// waited a.stall, setting stalled first; or returns once ctx ends.
func (a *attachment) watchStall(ctx context.Context, conn *wsproto.Conn, stalled *atomic.Bool) {
	if a.stall <= 0 || a.watch == nil {
		<-ctx.Done()
		return
	}
	tick := time.NewTicker(max(a.stall/8, 10*time.Millisecond))
	defer tick.Stop()
	var pings sync.WaitGroup
	defer pings.Wait()
	var pinging atomic.Bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		idle := a.watch.idle()
		if idle >= a.stall {
			stalled.Store(true)
			_ = conn.Close()
			return
		}
		if idle >= a.stall/3 && pinging.CompareAndSwap(false, true) {
			pings.Go(func() {
				defer pinging.Store(false)
				// Its pong touches the watch when the reader reads it;
				// an error is the connection's end, which the reader
				// sees, or the stall, which the loop sees.
				pctx, cancel := context.WithTimeout(ctx, a.stall)
				defer cancel()
				_ = conn.Ping(pctx)
			})
		}
	}
}
