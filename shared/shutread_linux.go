package shared

import "net"

// shutRead shuts the reading of a byte channel down (shutdown(2)'s
// SHUT_RD): a Unix socket's frames queued at this end stay to be read,
// then reads find its end, and what the other end writes from then on
// fails (EPIPE).
func shutRead(c *net.UnixConn) { _ = c.CloseRead() }
