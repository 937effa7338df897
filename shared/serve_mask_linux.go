package shared

import (
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// clearSignalMask re-executes the plugin with an empty signal mask if the
// mask it started with blocks any signal: Go starts children with the
// process's initial mask, which nothing else can change. ignored are the
// signals the plugin was started with ignored; they are caught during the
// exec so that it resets them, and passed on in ignoredSignalsEnv. If the
// exec fails, the plugin goes on with the mask it has.
func clearSignalMask(ignored []os.Signal) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var mask, empty unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, nil, &mask); err != nil || mask == empty {
		return
	}
	// /proc/self/exe is the file this process runs, even if its name now
	// names another: the server started the plugin from the file whose
	// checksum it took. os.Executable would give the name.
	exe := "/proc/self/exe"
	if _, err := os.Stat(exe); err != nil {
		if exe, err = os.Executable(); err != nil {
			return
		}
	}
	if len(ignored) > 0 {
		signal.Notify(make(chan os.Signal, 1), ignored...)
	}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &empty, nil); err != nil {
		return
	}
	env := append(os.Environ(), ignoredSignalsEnv+"="+signalList(ignored))
	err := syscall.Exec(exe, os.Args, env)
	// Still here: the exec failed. Keep the mask the plugin started with.
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &mask, nil)
	Logger().Warn("could not clear the inherited signal mask; sessions inherit it", "error", err)
}

// maxSignal is the highest signal number: the real-time signals included.
const maxSignal = syscall.Signal(64)

// resetUnmanaged sets sig back to its default action if it is one that Go's
// runtime never installs a handler for (32 and 33, which glibc reserves),
// so signal.Notify cannot catch it, and reports whether it did. Nothing
// sends those signals to a plugin.
func resetUnmanaged(sig syscall.Signal) bool {
	if sig != 32 && sig != 33 {
		return false
	}
	// The kernel's struct sigaction, all zero: SIG_DFL, no flags, an
	// empty mask.
	var act [4]uint64
	_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
	return errno == 0
}
