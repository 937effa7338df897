package main

import "github.com/ptyhost/ptyhost/shared"

// linuxSignals names the Linux signals 1..31 whose default action ends the
// process. Containers run Linux whatever the plugin's own OS is, so this is
// a fixed table, not the plugin's syscall numbering. Signals that stop,
// continue or are ignored by default (CHLD, CONT, STOP, TSTP, TTIN, TTOU,
// URG, WINCH) are absent: no process dies of them.
var linuxSignals = map[int]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP",
	6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1",
	11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
	16: "SIGSTKFLT", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM",
	27: "SIGPROF", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
}

// exitStatus turns the exit code the daemon reports into an ExitStatus.
//
// Docker reports only a code: for a process killed by signal n it is 128+n
// (containerd's convention for the container's init, and docker-init's for
// its child), the same code a process gets from `exit 128+n`. Like a shell
// reading $?, a code 128+n where n is a Linux signal that terminates by
// default is taken as death by that signal. A process that chose such a
// code (exit 130) is reported as killed by SIGINT; a shell user would read
// it the same way.
func exitStatus(code int) shared.ExitStatus {
	st := shared.ExitStatus{Code: code}
	if code > 128 {
		st.Signal = linuxSignals[code-128]
	}
	return st
}
