//go:build !unix

package gormstore

// processAlive cannot tell here, so it says every process is alive: a
// claim of a server that is gone is taken over once its lease expires.
func processAlive(int) bool { return true }

// localInstance is unknown here: a dead pid is never taken for a gone
// server, whose claim waits for its lease instead.
func localInstance() string { return "" }
