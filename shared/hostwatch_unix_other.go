//go:build unix && !linux

package shared

// newHostWatch returns a function that reports whether the process host
// has exited (see signalHostWatch).
func newHostWatch(host int) func() bool { return signalHostWatch(host) }
