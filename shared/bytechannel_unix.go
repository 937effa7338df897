//go:build unix

package shared

import (
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ptyhost/ptyhost/internal/rawio"
)

// writeAck writes the acknowledgement ack on c, with input's descriptor
// beside it (SCM_RIGHTS) if input is not nil and still open.
func writeAck(c *net.UnixConn, ack []byte, input *os.File) error {
	if input != nil {
		if rc, err := input.SyscallConn(); err == nil {
			var werr error
			if err := rc.Control(func(fd uintptr) {
				_, _, werr = c.WriteMsgUnix(ack, unix.UnixRights(int(fd)), nil)
			}); err == nil {
				return werr
			}
		}
		// Closed meanwhile: the acknowledgement alone.
	}
	_, err := c.Write(ack)
	return err
}

// readAck reads the acknowledgement into got, and any descriptors the
// plugin sent beside it (see takeInput).
func readAck(c *net.UnixConn, got []byte) (fds []int, err error) {
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, _, _, err := c.ReadMsgUnix(got, oob)
	if err != nil {
		return nil, err
	}
	if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range cmsgs {
			if rights, err := unix.ParseUnixRights(&m); err == nil {
				fds = append(fds, rights...)
			}
		}
	}
	if _, err := io.ReadFull(c, got[n:]); err != nil {
		closeFDs(fds)
		return nil, err
	}
	return fds, nil
}

// takeInput makes the direct input of fds, which came with a checked
// acknowledgement, if want: one descriptor, a terminal's master (made
// non-blocking, which the plugin's is already). Anything else is closed,
// and so is a terminal nobody asked for.
func takeInput(fds []int, want bool) *directInput {
	if want && len(fds) == 1 && isMaster(fds[0]) && unix.SetNonblock(fds[0], true) == nil {
		return newDirectInput(fds[0])
	}
	closeFDs(fds)
	return nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// writeNow makes one write of b to the terminal, never waiting:
// unix.EAGAIN if it is full, rawio.ErrBlocking if whoever shares it (the
// plugin) switched it to blocking mode; input goes as frames then. It
// returns what went (0 on error). The write is raw only for a plugin the
// host trusts (GRPCClient.TrustInput): another could switch the terminal
// to blocking mode, full, between the check and a raw write, which would
// then hold the whole host at its next garbage collection.
func (d *directInput) writeNow(b []byte) (int, error) {
	if d.raw {
		return rawio.WriteNowRaw(d.fd, b)
	}
	return rawio.WriteNow(d.fd, b)
}

// resize sets the terminal's size, not zero (Resize checks).
func (d *directInput) resize(size Size) error {
	return unix.IoctlSetWinsize(d.fd, unix.TIOCSWINSZ, &unix.Winsize{Row: size.Rows, Col: size.Cols})
}

// closeLocked closes the descriptor; the slot is held.
func (d *directInput) closeLocked() {
	if d.fd >= 0 {
		unix.Close(d.fd)
		d.fd = -1
	}
}
