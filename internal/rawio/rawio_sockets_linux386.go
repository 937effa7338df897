//go:build linux && 386

package rawio

// On 386, sockets' calls go through socketcall(2): sockets are read and
// written as files are, their mode checked first.

func recv(fd int, p []byte) (int, error) { return read(fd, p) }
func send(fd int, p []byte) (int, error) { return write(fd, p) }

const socketsRaw = false
