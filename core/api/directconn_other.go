//go:build !unix

package api

import "syscall"

// canWrite is false where the socket cannot be asked: no direct writes.
func canWrite(syscall.RawConn) bool { return false }
