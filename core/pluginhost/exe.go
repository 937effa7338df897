package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// exeFile is a plugin's executable, open from the check of its checksum
// to the start of its process, so that the process started is the file
// whose checksum was taken, not whatever its name points at by then (see
// command).
type exeFile struct {
	path   string // as found in the plugin directory: the process's argv[0]
	f      *os.File
	fi     os.FileInfo
	script bool // begins with "#!"
}

// openExecutable opens the executable at path, following symlinks, and
// checks that it is a regular file with an execute bit.
func openExecutable(path string) (*exeFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkExecutable(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	var magic [2]byte
	n, _ := f.ReadAt(magic[:], 0)
	return &exeFile{path: path, f: f, fi: fi, script: n == 2 && string(magic[:]) == "#!"}, nil
}

func (e *exeFile) Close() error { return e.f.Close() }

// sha256 returns the checksum of the open file's content.
func (e *exeFile) sha256() (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(e.f, 0, e.fi.Size())); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sameAs reports whether the open file is the one fi describes, unchanged
// as far as its size and modification time tell.
func (e *exeFile) sameAs(fi os.FileInfo) bool {
	return fi != nil && os.SameFile(e.fi, fi) && e.fi.Size() == fi.Size() && e.fi.ModTime().Equal(fi.ModTime())
}

// command returns the command that starts the open file with args. Where
// the system allows (Linux, see fdExecPath), it executes the open file
// itself; a script ("#!"), whose interpreter opens it again by name, and
// any file elsewhere, are started by path.
func (e *exeFile) command(args []string) *exec.Cmd {
	cmd := exec.Command(e.path, args...)
	if !e.script {
		if p, ok := fdExecPath(e.f); ok {
			cmd.Path = p // cmd.Args[0] stays the plugin's path
		}
	}
	return cmd
}

// looseModes says why someone other than this user, or root, could
// replace the executable (or the file a symlink in the plugin directory
// points at), or "": it, its directory or a directory above that (which
// could rename the one below) is writable by its group or others without
// being sticky, or belongs to another user.
func (e *exeFile) looseModes() string {
	var why []string
	check := func(what string, fi os.FileInfo) {
		switch {
		case fi.Mode()&os.ModeSticky == 0 && fi.Mode().Perm()&0o022 != 0:
			why = append(why, fmt.Sprintf("%s is writable by its group or others (mode %v)", what, fi.Mode().Perm()))
		case foreignOwner(fi):
			why = append(why, what+" belongs to another user")
		}
	}
	check("the executable "+e.path, e.fi)
	dirs := []string{filepath.Dir(e.path)}
	if resolved, err := filepath.EvalSymlinks(e.path); err == nil && filepath.Dir(resolved) != dirs[0] {
		dirs = append(dirs, filepath.Dir(resolved))
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		what := "its directory "
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		for !seen[d] {
			seen[d] = true
			if fi, err := os.Stat(d); err == nil {
				check(what+d, fi)
			}
			what = "the directory above it "
			d = filepath.Dir(d)
		}
	}
	return strings.Join(why, "; ")
}
