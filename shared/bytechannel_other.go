//go:build !unix

package shared

import (
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// writeAck writes the acknowledgement; no terminal goes with it here.
func writeAck(c *net.UnixConn, ack []byte, _ *os.File) error {
	_, err := c.Write(ack)
	return err
}

// readAck reads the acknowledgement; no descriptor comes with it here.
func readAck(c *net.UnixConn, got []byte) ([]int, error) {
	_, err := io.ReadFull(c, got)
	return nil, err
}

// takeInput returns nil: there is no direct input here.
func takeInput([]int, bool) *directInput { return nil }

func closeFDs([]int) {}

// writeNow fails: there is no directInput here.
func (d *directInput) writeNow([]byte) (int, error) { return 0, errors.ErrUnsupported }

// resize fails: there is no directInput here.
func (d *directInput) resize(Size) error { return errors.ErrUnsupported }

// closeLocked does nothing.
func (d *directInput) closeLocked() {}

// sweepChannelDirs removes nothing: there are no byte channel directories
// to sweep here.
func sweepChannelDirs(string, time.Time) int { return 0 }
