//go:build linux && (386 || s390x)

package rawio

// On 386 and s390x, sockets' calls went through socketcall(2) (s390x has
// recvfrom and sendto of their own only since Linux 4.3): sockets are read and
// written as files are, their mode checked first.

func recv(fd int, p []byte) (int, error) { return read(fd, p) }
func send(fd int, p []byte) (int, error) { return write(fd, p) }

const socketsRaw = false
