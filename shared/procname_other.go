//go:build !linux

package shared

// nameProcess: only Linux starts a plugin through its open file, which
// names the process by the descriptor's number.
func nameProcess() {}
