package pluginhost

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Plugins without a SocketDir make theirs in TMPDIR and remove it at
// Close; a server killed first leaves it. The next such Plugins removes
// those of a killed server, and nothing a live one uses.
func TestTempSocketDirsOfKilledServersGo(t *testing.T) {
	tmp := t.TempDir()
	old := time.Now().Add(-2 * tempSweepAge)
	mk := func(name string, lock bool) string {
		t.Helper()
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if lock {
			if err := os.WriteFile(filepath.Join(dir, socketLockName), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	// socket makes a socket in dir; a dead one's listener is closed without
	// removing it, as a killed plugin leaves it.
	socket := func(dir, name string, dead bool) {
		t.Helper()
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, name), Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		if dead {
			ln.SetUnlinkOnClose(false)
			ln.Close()
			return
		}
		t.Cleanup(func() { ln.Close() })
	}
	killed := mk("ptyhost-plugins-101", true)
	socket(killed, "plugin1234", true)
	if err := os.Mkdir(filepath.Join(killed, "plugin-dir99"), 0o700); err != nil {
		t.Fatal(err)
	}
	unlocked := mk("ptyhost-plugins-102", false) // killed before it locked
	inUse := mk("ptyhost-plugins-103", true)
	held, err := os.Open(filepath.Join(inUse, socketLockName))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if err := lockFile(held, false); err != nil {
		t.Fatal(err)
	}
	orphan := mk("ptyhost-plugins-104", true) // a plugin of a killed server still listens
	socket(orphan, "plugin5678", false)
	young := mk("ptyhost-plugins-105", true)
	other := mk("ptyhost-plugins-test", true)
	for _, d := range []string{killed, unlocked, inUse, orphan, other} {
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}

	t.Setenv("TMPDIR", tmp)
	d, err := openSocketDir("")
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	for _, gone := range []string{killed, unlocked} {
		if _, err := os.Lstat(gone); !os.IsNotExist(err) {
			t.Errorf("%s: %v; want it removed", filepath.Base(gone), err)
		}
	}
	for _, kept := range []string{inUse, orphan, young, other, filepath.Join(orphan, "plugin5678"), d.path} {
		if _, err := os.Lstat(kept); err != nil {
			t.Errorf("%s: %v; want it left", kept, err)
		}
	}
}
