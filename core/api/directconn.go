package api

import (
	"bufio"
	"net"
	"net/http"
	"syscall"
)

// hijackTap is an http.ResponseWriter whose Hijack (which
// websocket.Accept calls) keeps the connection it hands over, so that the
// WebSocket's writer can ask whether a write would wait (canWrite).
type hijackTap struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijackTap) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = c
	return c, brw, err
}

func (h *hijackTap) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// rawConn returns the hijacked connection's raw file descriptor, if it has
// one (a TCP or Unix socket; not, say, a test's pipe).
func (h *hijackTap) rawConn() syscall.RawConn {
	sc, ok := h.conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
