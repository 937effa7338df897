package pluginhost

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ptyhost/ptyhost/internal/staledir"
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
// free is done with. Not on Windows, where locks are not taken (nor
// owners told: staledir finds no candidates).
func sweepTempSocketDirs(tmp string, now time.Time) int {
	removed := 0
	for _, path := range staledir.Candidates(tmp, tempSocketDirPattern, now, tempSweepAge) {
		if sweepTempSocketDir(path) {
			removed++
		}
	}
	return removed
}

// sweepTempSocketDir is sweepTempSocketDirs for one staledir candidate.
func sweepTempSocketDir(path string) bool {
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
