//go:build !unix

package pluginlog

import "errors"

// dup2 is not done here: a plugin runs on Unix systems only.
func dup2(from, to interface{ Fd() uintptr }) error {
	return errors.New("redirecting stderr: not supported on this system")
}
