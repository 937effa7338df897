//go:build !unix

package shared

// resetSignals does nothing where there are no POSIX signals.
func resetSignals() {}
