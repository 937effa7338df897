//go:build unix

package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDataDirRefusesWhatOthersCanWrite: a data directory, or an SQLite
// database, that another user can write (and so make every session run
// what they choose) is refused before anything opens it.
func TestDataDirRefusesWhatOthersCanWrite(t *testing.T) {
	type refusal struct {
		name string
		make func(t *testing.T, dir string) (dataDir, db string)
		want string
	}
	var others []refusal
	if os.Geteuid() == 0 {
		// Another user's: root may make them (make test runs as root).
		others = []refusal{
			{"another user's data directory", func(t *testing.T, dir string) (string, string) {
				d := filepath.Join(dir, "data")
				mkdir(t, d, 0o700)
				chown(t, d)
				return d, "sqlite:" + filepath.Join(d, "ptyhost.db")
			}, "belongs to uid 65534"},
			{"another user's database", func(t *testing.T, dir string) (string, string) {
				d := filepath.Join(dir, "data")
				mkdir(t, d, 0o700)
				writeFile(t, filepath.Join(d, "ptyhost.db"), 0o600)
				chown(t, filepath.Join(d, "ptyhost.db"))
				return d, "sqlite:" + filepath.Join(d, "ptyhost.db")
			}, "belongs to uid 65534"},
		}
	}
	for _, tt := range append(others, []refusal{
		{"world-writable data directory", func(t *testing.T, dir string) (string, string) {
			d := filepath.Join(dir, "data")
			mkdir(t, d, 0o777)
			return d, "sqlite:" + filepath.Join(d, "ptyhost.db")
		}, "can be written by other users"},
		{"group-writable database directory", func(t *testing.T, dir string) (string, string) {
			d, other := filepath.Join(dir, "data"), filepath.Join(dir, "db")
			mkdir(t, d, 0o700)
			mkdir(t, other, 0o770)
			return d, "sqlite:" + filepath.Join(other, "x.db")
		}, "database directory"},
		{"world-writable database file", func(t *testing.T, dir string) (string, string) {
			d := filepath.Join(dir, "data")
			mkdir(t, d, 0o700)
			writeFile(t, filepath.Join(d, "ptyhost.db"), 0o666)
			return d, "sqlite:" + filepath.Join(d, "ptyhost.db")
		}, "database file"},
		{"database is a symbolic link", func(t *testing.T, dir string) (string, string) {
			d := filepath.Join(dir, "data")
			mkdir(t, d, 0o700)
			writeFile(t, filepath.Join(dir, "elsewhere.db"), 0o600)
			if err := os.Symlink(filepath.Join(dir, "elsewhere.db"), filepath.Join(d, "ptyhost.db")); err != nil {
				t.Fatal(err)
			}
			return d, "sqlite:" + filepath.Join(d, "ptyhost.db")
		}, "not a regular file"},
	}...) {
		t.Run(tt.name, func(t *testing.T) {
			dataDir, db := tt.make(t, t.TempDir())
			_, err := prepareDataDir(dataDir, db)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("prepareDataDir: %v, want a refusal naming %q", err, tt.want)
			}
		})
	}
}

// TestDataDirKeepsTheDatabasePrivate: a new database is created 0600 (and
// SQLite's -wal and -shm files take its mode); one others can read, of
// an older version, is made 0600, and said so.
func TestDataDirKeepsTheDatabasePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	db := "sqlite:" + filepath.Join(dir, "ptyhost.db")
	if tightened, err := prepareDataDir(dir, db); err != nil || len(tightened) != 0 {
		t.Fatalf("prepareDataDir: %v, %v", tightened, err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "ptyhost.db"): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %04o", path, fi.Mode(), err, want)
		}
	}
	for _, f := range []string{"ptyhost.db", "ptyhost.db-wal"} {
		if err := os.Chmod(filepath.Join(dir, "ptyhost.db"), 0o644); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "ptyhost.db-wal"), 0o644)
		tightened, err := prepareDataDir(dir, db)
		if err != nil || len(tightened) != 2 {
			t.Fatalf("prepareDataDir: %v, %v; want the database and its -wal made private", tightened, err)
		}
		if fi, _ := os.Stat(filepath.Join(dir, f)); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", f, fi.Mode().Perm())
		}
	}
	// PostgreSQL: the data directory is checked, no file is made.
	if _, err := prepareDataDir(dir, "postgres://x/y"); err != nil {
		t.Errorf("prepareDataDir with PostgreSQL: %v", err)
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, path string) {
	t.Helper()
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
}

// TestServeRefusesAnOpenDataDir: serve checks its data directory before
// it listens or opens the database, and says why (exit 2).
func TestServeRefusesAnOpenDataDir(t *testing.T) {
	d := filepath.Join(t.TempDir(), "data")
	mkdir(t, d, 0o777)
	var stderr strings.Builder
	err := runServer(t.Context(), []string{"serve", "--data-dir", d, "--listen", "127.0.0.1:0", "--plugin-dir", t.TempDir()}, io.Discard, &stderr)
	if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "can be written by other users") {
		t.Fatalf("serve: %v, want the data directory refused", err)
	}
	if _, err := os.Stat(filepath.Join(d, "ptyhost.db")); err == nil {
		t.Error("a database was made in the refused directory")
	}
}
