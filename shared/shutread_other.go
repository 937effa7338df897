//go:build !linux

package shared

import "net"

// shutRead does nothing outside Linux, where shutting a Unix socket's
// reading down may discard what is queued at its end (BSD's and macOS's
// do): a channel's reads after the stop end at the first that finds
// nothing instead.
func shutRead(*net.UnixConn) {}
