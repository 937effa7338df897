//go:build unix

package shared

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
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
		paths, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			continue
		}
		for _, path := range paths {
			if madeAs(filepath.Base(path), pattern) && staleChannelDir(path, now) && removeChannelDir(path) {
				removed++
			}
		}
	}
	return removed
}

// oldChannelDirPattern is how plugins built before channelDirPattern
// named their directories, whose leftovers are swept too.
const oldChannelDirPattern = "ptyhost-plugin-*"

// madeAs reports whether name is one os.MkdirTemp could have made from
// pattern: its star, decimal digits. Others only look alike, such as a
// directory named for a plugin's executable.
func madeAs(name, pattern string) bool {
	digits, ok := strings.CutPrefix(name, strings.TrimSuffix(pattern, "*"))
	if !ok || digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// staleChannelDir reports whether path is a dead plugin's byte channel
// directory (see sweepChannelDirs).
func staleChannelDir(path string, now time.Time) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 || !ownedByMe(fi) || now.Sub(fi.ModTime()) < channelSweepAge {
		return false
	}
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

// ownedByMe reports whether fi's owner is this process's user.
func ownedByMe(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}
