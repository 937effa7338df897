package api

import (
	"bufio"
	"net"
	"net/http"

	"github.com/ptyhost/ptyhost/internal/rawio"
)

// hijackTap is an http.ResponseWriter whose Hijack (which websocket.Accept
// calls) hands over the connection read and written with raw system calls
// (rawio.Conn) when its socket allows, and keeps it, so that the
// WebSocket's writers can ask whether a write would wait and bound the
// waits of their writes without a timer per write.
type hijackTap struct {
	http.ResponseWriter
	sock *rawio.Conn // nil: the connection as net/http hands it over
}

func (h *hijackTap) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil || brw == nil || brw.Writer.Buffered() > 0 {
		return c, brw, err
	}
	if s := rawio.NewConn(c); s != nil {
		// Accept reads from what brw.Reader holds, then from the
		// connection it gets; it writes through brw.Writer.
		brw.Writer.Reset(s)
		h.sock = s
		return s, brw, nil
	}
	return c, brw, nil
}

func (h *hijackTap) Unwrap() http.ResponseWriter { return h.ResponseWriter }
