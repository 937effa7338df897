package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"
)

// maxConfigFile bounds an identity or known_hosts file: either is a few
// KiB, and a path to /dev/zero must not be read without end.
const maxConfigFile = 4 << 20

// maxGlobalKnownHosts bounds a global known_hosts file, larger: one that
// lists a whole fleet's host keys can run to tens of MiB.
const maxGlobalKnownHosts = 64 << 20

// readConfigFile reads the regular file at path, which the config names
// as what (its errors say so): a FIFO or a device is refused (opening a FIFO for reading
// waits for a writer: a plugin thread, and the environment's creation,
// held until one came), and so is a file larger than maxConfigFile. It
// returns the file's information with its bytes; a missing file's error
// wraps fs.ErrNotExist.
func readConfigFile(what, path string) ([]byte, fs.FileInfo, error) {
	return readBoundedFile(what, path, maxConfigFile)
}

// readBoundedFile is readConfigFile with limit in place of maxConfigFile.
func readBoundedFile(what, path string, limit int) ([]byte, fs.FileInfo, error) {
	// O_NONBLOCK: a FIFO opens at once, to be refused below; a regular
	// file reads as without it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fi, fmt.Errorf("%s %s is not a regular file (%s)", what, path, fi.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fi, fmt.Errorf("%s: %w", what, err)
	}
	if len(data) > limit {
		return nil, fi, fmt.Errorf("%s %s is larger than %d MiB", what, path, limit>>20)
	}
	return data, fi, nil
}

// keyTooOpen refuses, as OpenSSH does, a private key of this user's that
// others may read.
func keyTooOpen(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	return fmt.Errorf("identity_file %s can be read by other users (mode %04o): chmod 600 it (OpenSSH refuses such a key too)", path, fi.Mode().Perm())
}

// defaultGlobalKnownHosts are the system-wide known_hosts files OpenSSH
// reads by default (its GlobalKnownHostsFile): where a fleet's host keys
// are usually distributed.
var defaultGlobalKnownHosts = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}

// pathList is a config field naming files: one path, or an array of
// paths. nil is a field left out, which takes a default; empty, from ""
// or [], names no file. It is written back as an array, [] for none, so
// that a field turned off does not read back as left out.
type pathList []string

// UnmarshalJSON reads one path, or an array of them.
func (l *pathList) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as left out
	}
	var s string
	if json.Unmarshal(b, &s) == nil {
		*l = pathList{}
		if s != "" {
			*l = pathList{s}
		}
		return nil
	}
	var paths []string
	if err := json.Unmarshal(b, &paths); err != nil {
		return errors.New(`want a path, an array of paths, or "" (or []) for none`)
	}
	*l = append(pathList{}, paths...)
	return nil
}

// resolvePaths applies def to a field left out and checks every path as
// expandPath does, dropping repeats. field names the field in errors.
func resolvePaths(field string, l pathList, def []string) (pathList, error) {
	if l == nil {
		l = def
	}
	out := pathList{}
	for _, p := range l {
		if p == "" {
			return nil, fmt.Errorf(`%s: an empty path in the list ("" or [] alone reads no file)`, field)
		}
		abs, err := expandPath(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		if !slices.Contains(out, abs) {
			out = append(out, abs)
		}
	}
	return out, nil
}
