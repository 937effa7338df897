package pluginhost

import (
	"os"
	"strconv"
	"syscall"
)

// fdExecPath returns the path through which executing f executes the open
// file itself: its descriptor's entry in /proc, which the kernel resolves
// to the open file, not to the name it was opened by. f is close-on-exec:
// the started process does not inherit it. A descriptor below 3 would be
// replaced by the child's standard streams before the exec, and /proc may
// be missing; then ok is false.
func fdExecPath(f *os.File) (path string, ok bool) {
	fd := int(f.Fd())
	if fd < 3 {
		return "", false
	}
	path = "/proc/self/fd/" + strconv.Itoa(fd)
	if _, err := os.Stat(path); err != nil {
		return "", false
	}
	return path, true
}

// foreignOwner reports whether fi's file belongs to a user other than this
// process's and root.
func foreignOwner(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid != 0 && int(st.Uid) != os.Getuid()
}
