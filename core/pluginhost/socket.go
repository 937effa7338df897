package pluginhost

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
}

// openSocketDir prepares dir for the plugins' sockets: made if missing,
// mode 0700, owned by this user, not a symbolic link. When no other
// Plugins uses it, the sockets and go-plugin directories left in it are
// removed. An empty dir means a new private directory in os.TempDir(),
// removed by close.
func openSocketDir(dir string) (*socketDir, error) {
	d := &socketDir{path: dir}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "ptyhost-plugins-")
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
		sweepSockets(d.path)
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
// left in dir: sockets named plugin*, and go-plugin's plugin-dir*
// directories.
func sweepSockets(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "plugin-dir") && e.IsDir():
			_ = os.RemoveAll(filepath.Join(dir, name))
		case strings.HasPrefix(name, "plugin") && e.Type()&fs.ModeSocket != 0:
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
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
