package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The data directory holds the database, whose environments say what
// every session runs (their shell, their variables, secrets included):
// another user who can write the directory, or the database, runs
// commands as this server's user. So serve, before it opens anything,
// refuses a data directory, or an SQLite database and its directory,
// that another user owns or can write, and keeps the database for its
// user alone.

// prepareDataDir creates dir (0700) if it does not exist and checks it,
// then does the same for db's SQLite file, if db names one: its directory
// is checked as dir is, and the file, created 0600 if missing (SQLite's
// -wal and -shm files take its mode), must be this user's and writable by
// nobody else; one that others can read is made 0600. tightened names
// what was made private.
func prepareDataDir(dir, db string) (tightened []string, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := checkPrivateDir("data directory", dir); err != nil {
		return nil, err
	}
	path, ok := sqlitePath(db)
	if !ok {
		return nil, nil
	}
	if parent := filepath.Dir(path); parent != filepath.Clean(dir) {
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return nil, fmt.Errorf("database directory: %w", err)
		}
		if err := checkPrivateDir("database directory", parent); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		return nil, f.Close()
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("database: %w", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) && p != path {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("database file %s is not a regular file (%s): give --db a file of your own", p, fi.Mode().Type())
		}
		if err := ownedByMe("database file", p, fi); err != nil {
			return nil, err
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if perm&0o022 != 0 {
				return nil, fmt.Errorf("database file %s can be written by other users (mode %04o): they could make it run anything as you; chmod 600 it and check what it holds", p, perm)
			}
			if err := os.Chmod(p, 0o600); err != nil {
				return nil, fmt.Errorf("database: %w", err)
			}
			tightened = append(tightened, p)
		}
	}
	return tightened, nil
}

// checkPrivateDir refuses dir unless it is a directory of this user's
// that no other user can write (and, when it is a symbolic link, the link
// is this user's too).
func checkPrivateDir(what, dir string) error {
	if li, err := os.Lstat(dir); err == nil && li.Mode()&fs.ModeSymlink != 0 {
		if err := ownedByMe(what+" (a symbolic link)", dir, li); err != nil {
			return err
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s %s is not a directory", what, dir)
	}
	if err := ownedByMe(what, dir, fi); err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%s %s can be written by other users (mode %04o): they could replace the database and run anything as you; chmod go-w it, or use a directory of your own", what, dir, perm)
	}
	return nil
}

// ownedByMe refuses a file another user owns.
func ownedByMe(what, path string, fi fs.FileInfo) error {
	if uid, ok := fileOwner(fi); ok && uid != os.Getuid() {
		return fmt.Errorf("%s %s belongs to uid %d, not to this user (%d): another user could make it run anything as you; use one of your own", what, path, uid, os.Getuid())
	}
	return nil
}

// sqlitePath returns the file of an SQLite DSN ("sqlite:PATH?…"), if db
// is one and not in memory.
func sqlitePath(db string) (string, bool) {
	rest, ok := strings.CutPrefix(db, "sqlite:")
	if !ok {
		return "", false
	}
	path, _, _ := strings.Cut(rest, "?")
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return "", false
	}
	return path, true
}
