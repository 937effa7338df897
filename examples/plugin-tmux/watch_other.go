//go:build !linux

package main

// waitProcess waits until the process pid has exited (true) or stop is
// closed (false). Without pidfds, it polls.
func waitProcess(pid int, stop <-chan struct{}) bool {
	return pollProcess(pid, stop)
}
