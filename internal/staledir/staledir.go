// Package staledir finds the temporary directories that a killed process
// may have left: those os.MkdirTemp made from a pattern that are this
// user's, private, and old enough that whoever made them is done with
// them, if it was not killed. The sweeps of a plugin's byte channel
// directories (shared) and of a plugin host's socket directories
// (core/pluginhost) start from them, and each then checks that nothing
// uses the directory before removing it.
package staledir

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Candidates returns the paths in dir that os.MkdirTemp could have made
// from pattern (its star replaced by decimal digits; a name that only
// looks alike, such as one a person or another program chose, is not one)
// and that are directories, not symbolic links, of this user, mode 0700,
// last changed at least age before now. On systems where a file's owner
// cannot be told, there are none.
func Candidates(dir, pattern string, now time.Time, age time.Duration) []string {
	paths, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		return nil
	}
	var out []string
	for _, path := range paths {
		if madeFrom(filepath.Base(path), pattern) && private(path, now, age) {
			out = append(out, path)
		}
	}
	return out
}

// madeFrom reports whether name is one os.MkdirTemp could have made from
// pattern.
func madeFrom(name, pattern string) bool {
	digits, ok := strings.CutPrefix(name, strings.TrimSuffix(pattern, "*"))
	return ok && digits != "" && strings.Trim(digits, "0123456789") == ""
}

// private reports whether path is a directory of this user, mode 0700,
// last changed at least age before now.
func private(path string, now time.Time, age time.Duration) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.IsDir() && fi.Mode().Perm() == 0o700 && ownedByMe(fi) && now.Sub(fi.ModTime()) >= age
}
