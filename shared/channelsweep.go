//go:build unix

package shared

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ptyhost/ptyhost/internal/staledir"
)

// channelSweepAge is how old a directory must be before sweepChannelDirs
// takes it for a dead plugin's: far longer than a live plugin takes from
// making the directory to listening on its socket, when a connection to
// it is refused and the directory holds nothing.
const channelSweepAge = time.Minute

// sweepChannelDirs removes, from dir, the byte channels' directories that
// plugins killed before they could remove them left behind (a plugin
// removes its own when its last offer is taken): those of this user, mode
// 0700, at least channelSweepAge old, holding nothing but a socket nobody
// listens on (a connection is refused), or nothing at all. Anything else,
// which is not a plugin's leftover or may be a live plugin's, is left. It
// reports how many it removed.
func sweepChannelDirs(dir string, now time.Time) int {
	removed := 0
	for _, pattern := range []string{channelDirPattern, oldChannelDirPattern} {
		for _, path := range staledir.Candidates(dir, pattern, now, channelSweepAge) {
			if staleChannelDir(path, now) && removeChannelDir(path) {
				removed++
			}
		}
	}
	return removed
}

// oldChannelDirPattern is how plugins built before channelDirPattern
// named their directories, whose leftovers are swept too.
const oldChannelDirPattern = "ptyhost-plugin-*"

// staleChannelDir reports whether path, a staledir candidate, holds
// nothing or only a socket channelSweepAge old that refuses connections
// (see sweepChannelDirs).
func staleChannelDir(path string, now time.Time) bool {
	entries, err := os.ReadDir(path)
	if err != nil || len(entries) > 1 {
		return false
	}
	if len(entries) == 0 {
		return true
	}
	e := entries[0]
	if e.Name() != channelSocketName || e.Type()&fs.ModeSocket == 0 {
		return false
	}
	sock, err := e.Info()
	if err != nil || now.Sub(sock.ModTime()) < channelSweepAge {
		return false
	}
	c, err := net.DialTimeout("unix", filepath.Join(path, channelSocketName), channelHandshakeTimeout)
	if err == nil {
		c.Close() // a live plugin's: its handshake drops a connection with no token
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// removeChannelDir removes a stale channel directory: its socket, then the
// directory, which fails, leaving it, if something was put in it since.
func removeChannelDir(path string) bool {
	sock := filepath.Join(path, channelSocketName)
	if err := os.Remove(sock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	return os.Remove(path) == nil
}
