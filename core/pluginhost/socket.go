package pluginhost

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// maxSocketDirLen is the longest socket directory: a plugin's socket,
// DIR/pluginNNNNNNNNNN (os.CreateTemp's pattern, which go-plugin uses),
// must fit in a Unix socket address (107 bytes and a NUL).
const maxSocketDirLen = 107 - len("/plugin") - 10

// socketLockName is the lock file in a socket directory. Every Plugins
// using the directory holds a shared lock on it; one that gets an
// exclusive lock knows nobody else uses the directory, and removes the
// sockets a killed server left there.
const socketLockName = ".lock"

// socketDir is the private directory the plugins' go-plugin sockets are
// made in.
type socketDir struct {
	path string
	lock *os.File
	temp bool // made by openSocketDir: removed by close
	// owner: no other Plugins used the directory when this one opened it.
	// Only the owner reattaches to the processes the records name, and
	// makes records.
	owner bool
	// exited names, by pid, the plugins whose processes exited while no
	// server ran, whose records sweepSockets removed: their log files
	// are relayed under the plugin's name (drainExitedLogs), which the
	// files do not hold.
	exited map[int]string
}

// openSocketDir prepares dir for the plugins' sockets: made if missing,
// mode 0700, owned by this user, not a symbolic link. When no other
// Plugins uses it, the sockets and go-plugin directories left in it are
// removed (see sweepSockets), and this Plugins owns it. An empty dir
// means a new private directory in os.TempDir(), removed by close; the
// ones killed servers left there go first (sweepTempSocketDirs).
func openSocketDir(dir string) (*socketDir, error) {
	d := &socketDir{path: dir}
	if dir == "" {
		sweepTempSocketDirs(os.TempDir(), time.Now())
		tmp, err := os.MkdirTemp("", tempSocketDirPattern)
		if err != nil {
			return nil, fmt.Errorf("plugin socket dir: %w", err)
		}
		d.path, d.temp = tmp, true
	} else if err := prepareSocketDir(dir); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(d.path, socketLockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		d.remove()
		return nil, fmt.Errorf("plugin socket dir: %w", err)
	}
	d.lock = lock
	if err := lockFile(lock, true); err == nil {
		d.owner = true
		d.exited = sweepSockets(d.path)
	}
	// Converts the exclusive lock, or waits for a sweeping server's.
	if err := lockFile(lock, false); err != nil {
		d.close()
		return nil, fmt.Errorf("plugin socket dir: locking %s: %w", lock.Name(), err)
	}
	return d, nil
}

func prepareSocketDir(dir string) error {
	if len(dir) > maxSocketDirLen {
		return fmt.Errorf("plugin socket dir %s: %d bytes long; a Unix socket in it needs it at most %d", dir, len(dir), maxSocketDirLen)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("plugin socket dir: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("plugin socket dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("plugin socket dir %s is not a directory", dir)
	}
	if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("plugin socket dir %s belongs to uid %d, not to this user (%d)", dir, uid, os.Getuid())
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("plugin socket dir: %w", err)
		}
	}
	return nil
}

// sweepSockets removes what plugins of a server that did not stop cleanly
// left in dir, but not what a plugin process still running may be
// reattached through: the reattach records of processes that have exited,
// and their sockets (named plugin*) — those nobody listens on any more,
// unless a record of a live process names them —, go-plugin's plugin-dir*
// directories (a plugin's socket is never in one: see newProcRunner), and
// temporary files of records never written. It returns the names of the
// plugins whose records it removed, by their processes' pids.
func sweepSockets(dir string) map[int]string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	exited := map[int]string{}
	live := map[string]bool{} // sockets named by the records of live processes
	for _, e := range entries {
		name, path := e.Name(), filepath.Join(dir, e.Name())
		switch {
		case strings.HasSuffix(name, recordSuffix) && e.Type().IsRegular():
			// An unreadable record is left to Load, which logs it.
			if rec, err := readRecord(path); err == nil {
				if processAlive(rec.PID) {
					live[rec.Addr] = true
				} else if os.Remove(path) == nil {
					exited[rec.PID] = strings.TrimSuffix(name, recordSuffix)
				}
			}
		case strings.HasPrefix(name, ".reattach-") && strings.HasSuffix(name, ".tmp"):
			_ = os.Remove(path)
		}
	}
	for _, e := range entries {
		name, path := e.Name(), filepath.Join(dir, e.Name())
		switch {
		case strings.HasPrefix(name, "plugin-dir") && e.IsDir():
			_ = os.RemoveAll(path)
		case strings.HasPrefix(name, "plugin") && e.Type()&fs.ModeSocket != 0 && !live[path] && !listening(path):
			_ = os.Remove(path)
		}
	}
	return exited
}

// listening reports whether a process accepts connections on the Unix
// socket at path: anything but a refusal (or no socket) counts.
func listening(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return true
	}
	return !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, fs.ErrNotExist)
}

// close releases the directory; one made by openSocketDir is removed.
func (d *socketDir) close() {
	if d.lock != nil {
		_ = d.lock.Close() // releases the lock
	}
	d.remove()
}

func (d *socketDir) remove() {
	if d.temp {
		_ = os.RemoveAll(d.path)
	}
}
