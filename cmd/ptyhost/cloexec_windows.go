package main

// closeOnExecInherited does nothing on Windows, where serve stops before
// it (errServeOnWindows); a process started there gets only the handles
// os/exec lists for it.
func closeOnExecInherited() error { return nil }
