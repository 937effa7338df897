//go:build !unix

package rawio

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// FD is, outside Unix systems, never made: New returns nil.
type FD struct{}

// New returns nil: the caller uses c itself.
func New(c syscall.Conn) *FD { return nil }

func (f *FD) Read(p []byte) (int, error)     { return 0, errors.ErrUnsupported }
func (f *FD) ReadNow(p []byte) (int, error)  { return 0, errors.ErrUnsupported }
func (f *FD) Write(p []byte) (int, error)    { return 0, errors.ErrUnsupported }
func (f *FD) WriteNow(p []byte) (int, error) { return 0, errors.ErrUnsupported }
func (f *FD) CanWrite() bool                 { return false }

// ErrBlocking is never returned outside Unix systems.
var ErrBlocking = errors.New("the descriptor is in blocking mode")

// WriteNow is unsupported outside Unix systems.
func WriteNow(fd int, p []byte) (int, error) { return 0, errors.ErrUnsupported }

// WriteNowRaw is unsupported outside Unix systems.
func WriteNowRaw(fd int, p []byte) (int, error) { return 0, errors.ErrUnsupported }

// Conn is, outside Unix systems, never made: NewConn returns nil.
type Conn struct{ net.Conn }

// NewConn returns nil: the caller uses c itself.
func NewConn(c net.Conn) *Conn { return nil }

func (c *Conn) SetWriteWait(time.Duration) {}
func (c *Conn) CanWrite() bool             { return false }
