// Package testbin finds or builds the project's binaries for integration
// tests, which must go through real plugin processes.
//
// When PTYHOST_BIN_DIR is set (make test sets it after `make build`), the
// binaries found there are used; anything else is built once per test
// binary, into a temporary directory.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
	tmp   string
)

// root is the module's root directory.
func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Path returns the path of the binary built from the package at pkg (a
// path relative to the module root, such as "plugins/host") under the given
// name (such as "plugins/ptyhost-plugin-host", relative to the bin dir).
func Path(t testing.TB, pkg, name string) string {
	t.Helper()
	if dir := os.Getenv("PTYHOST_BIN_DIR"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[name]; ok {
		return p
	}
	if tmp == "" {
		d, err := os.MkdirTemp("", "ptyhost-testbin-")
		if err != nil {
			t.Fatal(err)
		}
		tmp = d
	}
	out := filepath.Join(tmp, name)
	cmd := exec.Command("go", "build", "-o", out, "./"+pkg)
	cmd.Dir = root()
	if pkg == "plugins/docker" {
		// As make build links it: statically, to run in containers.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./%s: %v\n%s", pkg, err, b)
	}
	built[name] = out
	return out
}

// Ptyhost returns the ptyhost command.
func Ptyhost(t testing.TB) string { return Path(t, "cmd/ptyhost", "ptyhost") }

// PluginDir returns a directory holding the named built-in plugins (such as
// "host"), and nothing else.
func PluginDir(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		bin := Path(t, "plugins/"+n, "plugins/ptyhost-plugin-"+n)
		if err := os.Symlink(bin, filepath.Join(dir, "ptyhost-plugin-"+n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Cleanup removes the binaries Path built, with their temporary
// directory, so that a test run leaves nothing in TMPDIR. A test binary's
// TestMain calls it once its tests have run (leakcheck.Main does); Path
// builds again if called after it.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if tmp == "" {
		return
	}
	os.RemoveAll(tmp)
	tmp = ""
	built = map[string]string{}
}
