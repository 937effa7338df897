//go:build !unix

package shared

import "os"

// newHostWatch returns a function that reports whether the process host
// has exited; a plugin runs on Unix systems only, and here it counts the
// host gone once it is no longer the plugin's parent.
func newHostWatch(host int) func() bool {
	return func() bool { return os.Getppid() != host }
}
