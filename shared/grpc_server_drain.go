package shared

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ptyhost/ptyhost/internal/rawio"
)

// inputSource is what a session's byte channel's input pump reads from:
// the connection, until the attachment stops serving the session
// (stop); from then on only what the host wrote before, without waiting.
//
// A host that is killed, that stops without hanging up, or whose session
// another host takes over may have written input frames the pump has not
// read yet (the pump waits in a Write to a terminal that is full, or the
// plugin learnt of the host's end first by writing output). Those frames
// are the host's input, accepted and written before it went: they reach
// the session, in order, before any later host's (inputDrain), unless
// the session is closed or a later host's input waited too long for them.
// Closing the connection at the stop, as before, threw them away.
type inputSource struct {
	conn *net.UnixConn
	fd   *rawio.FD // nil: nothing is drained after the stop

	once     sync.Once
	stopping atomic.Bool
	drained  bool // the pump's own: the read deadline was lifted
}

// stop makes the pumps blocked on the connection return, once. Without
// drain (the session was closed, or another stream took it over before
// its channel was served) it closes the connection, as nothing more the
// host wrote is wanted. With drain output can no longer be written, the
// host reads the channel's end, and reads go on only for what is there
// already: on Linux the reading is shut down as well (shutRead), so that
// what the host writes from then on, alive or not, is refused and only
// the frames at the plugin's end now are read; elsewhere reads end at the
// first that finds nothing. It does not block (it runs under the ring's
// lock).
func (c *inputSource) stop(drain bool) {
	c.once.Do(func() {
		if !drain {
			_ = c.conn.Close()
			return
		}
		c.stopping.Store(true)
		_ = c.conn.SetDeadline(time.Now())
		_ = c.conn.CloseWrite()
		shutRead(c.conn)
	})
}

// Read implements io.Reader for the input pump.
func (c *inputSource) Read(p []byte) (int, error) {
	if !c.stopping.Load() {
		n, err := c.conn.Read(p)
		if n > 0 || err == nil || !c.stopping.Load() || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
	}
	if c.fd == nil {
		return 0, io.EOF
	}
	if !c.drained {
		c.drained = true
		_ = c.conn.SetReadDeadline(time.Time{})
	}
	n, err := c.fd.ReadNow(p)
	switch {
	case n > 0:
		return n, nil
	case err == nil, errors.Is(err, syscall.EAGAIN):
		return 0, io.EOF // all there was, or the host's end
	}
	return 0, err
}
