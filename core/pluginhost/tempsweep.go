package pluginhost

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// tempSocketDirPattern names the socket directories Plugins makes in
// os.TempDir() when Options.SocketDir is empty: os.MkdirTemp's pattern,
// which puts decimal digits for the star.
const tempSocketDirPattern = "ptyhost-plugins-*"

// tempSweepAge is how old a temporary socket directory must be before
// sweepTempSocketDirs takes it for a killed server's: far longer than a
// Plugins takes from making it to locking it.
const tempSweepAge = time.Minute

// sweepTempSocketDirs removes, from tmp, the temporary socket directories
// of servers (and embedding programs) killed before their Close could:
// those of this user, mode 0700, at least tempSweepAge old, whose lock
// nobody holds (a live Plugins holds a shared one), once sweepSockets has
// removed what is dead in them and nothing else is left. A plugin process
// still listening keeps its socket, and so the directory. Nobody opens a
// temporary directory but the Plugins that made it, so one whose lock is
// free is done with. Not on Windows, where locks are not taken.
func sweepTempSocketDirs(tmp string, now time.Time) int {
	if runtime.GOOS == "windows" {
		return 0
	}
	paths, err := filepath.Glob(filepath.Join(tmp, tempSocketDirPattern))
	if err != nil {
		return 0
	}
	removed := 0
	for _, path := range paths {
		if sweepTempSocketDir(path, now) {
			removed++
		}
	}
	return removed
}

// sweepTempSocketDir is sweepTempSocketDirs for one directory.
func sweepTempSocketDir(path string, now time.Time) bool {
	digits := strings.TrimPrefix(filepath.Base(path), strings.TrimSuffix(tempSocketDirPattern, "*"))
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return false
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || now.Sub(fi.ModTime()) < tempSweepAge {
		return false
	}
	if uid, ok := fileOwner(fi); !ok || uid != os.Getuid() {
		return false
	}
	lockPath := filepath.Join(path, socketLockName)
	lock, err := os.OpenFile(lockPath, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return os.Remove(path) == nil // only if empty: killed before it locked
	}
	if err != nil {
		return false
	}
	defer lock.Close()
	if lockFile(lock, true) != nil {
		return false // a live Plugins uses it
	}
	sweepSockets(path)
	entries, err := os.ReadDir(path)
	if err != nil || len(entries) != 1 || entries[0].Name() != socketLockName {
		return false
	}
	_ = os.Remove(lockPath)
	return os.Remove(path) == nil
}
