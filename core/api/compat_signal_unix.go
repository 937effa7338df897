//go:build unix

package api

import "golang.org/x/sys/unix"

// signalNumber returns the number of the signal named name ("SIGKILL") on
// this system, as node-pty reported it to the ancestor's clients; 0 when
// the name is empty or unknown.
func signalNumber(name string) int {
	if name == "" {
		return 0
	}
	return int(unix.SignalNum(name))
}
