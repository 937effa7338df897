//go:build unix

package pluginlog

import "golang.org/x/sys/unix"

// dup2 makes to's descriptor refer to from's open file.
func dup2(from, to interface{ Fd() uintptr }) error {
	return unix.Dup2(int(from.Fd()), int(to.Fd()))
}
