//go:build !unix

package api

// signalNumber returns the number of the signal named name ("SIGKILL"),
// as node-pty reported it to the ancestor's clients; 0 when the name is
// empty or unknown. Without the system's table, the numbers are Linux's
// (the sessions' processes run on a Unix host or in a Linux container).
func signalNumber(name string) int {
	return linuxSignals[name]
}

var linuxSignals = map[string]int{
	"SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5,
	"SIGABRT": 6, "SIGBUS": 7, "SIGFPE": 8, "SIGKILL": 9, "SIGUSR1": 10,
	"SIGSEGV": 11, "SIGUSR2": 12, "SIGPIPE": 13, "SIGALRM": 14, "SIGTERM": 15,
}
