//go:build unix

package shared

import (
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

// ignoredSignalsEnv carries the signals the plugin was started with
// ignored across the re-exec that clears its signal mask (see
// clearSignalMask), so that it goes on ignoring them.
const ignoredSignalsEnv = "PTYHOST_PLUGIN_IGNORED_SIGNALS"

// resetSignals prepares the plugin process so that what it starts gets
// default signal dispositions and an empty signal mask, whatever the
// plugin inherited (a server started under nohup passes SIGHUP ignored):
//
//   - A signal ignored at start is caught instead, by a handler that drops
//     it. The plugin still ignores it, but a caught signal is reset to its
//     default by exec, where an ignored one stays ignored. The few signals
//     Go's runtime never takes over (glibc's 32 and 33 on Linux) are set
//     back to their default instead.
//   - SIGPIPE is caught the same way, so that writing to the stderr of a
//     host that died fails with EPIPE instead of killing the plugin before
//     it has ended its sessions.
//   - A non-empty signal mask, which every child would inherit, is cleared
//     by re-executing the plugin once with an empty mask (Linux only).
func resetSignals() {
	var ignored []os.Signal
	for sig := syscall.Signal(1); sig <= maxSignal; sig++ {
		if sig == syscall.SIGKILL || sig == syscall.SIGSTOP || !signal.Ignored(sig) {
			continue
		}
		if resetUnmanaged(sig) {
			continue // now default in the plugin too
		}
		ignored = append(ignored, sig)
	}
	if list, ok := os.LookupEnv(ignoredSignalsEnv); ok {
		os.Unsetenv(ignoredSignalsEnv) // not for the sessions
		for _, f := range strings.Split(list, ",") {
			if n, err := strconv.Atoi(f); err == nil && n > 0 && n <= int(maxSignal) {
				ignored = append(ignored, syscall.Signal(n))
			}
		}
	} else {
		clearSignalMask(ignored)
	}
	// Nobody receives from drop: the signal package never blocks on a full
	// channel, it drops the signal.
	drop := make(chan os.Signal, 1)
	signal.Notify(drop, append(ignored, syscall.SIGPIPE)...)
}

// signalList formats signals for ignoredSignalsEnv.
func signalList(sigs []os.Signal) string {
	var b strings.Builder
	for i, s := range sigs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(s.(syscall.Signal))))
	}
	return b.String()
}
