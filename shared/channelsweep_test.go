//go:build unix

package shared

import (
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// A plugin killed while an offer was open leaves its private directory
// and socket in the temporary directory: the next plugin's first channel
// removes them, and nothing a live plugin, another program or another
// user may own.
func TestSweepChannelDirs(t *testing.T) {
	tmp := t.TempDir()
	now := time.Now()
	old := now.Add(-2 * channelSweepAge)
	mk := func(name string, mode os.FileMode) string {
		t.Helper()
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return dir
	}
	// listen makes dir's socket; a dead one's listener is closed without
	// removing it, as a killed process leaves it.
	listen := func(dir string, dead bool) {
		t.Helper()
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, channelSocketName), Net: "unix"})
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
	age := func(paths ...string) {
		t.Helper()
		for _, p := range paths {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}

	dead := mk("ptyhost-plugin-1001", 0o700) // named as plugins before ptyhost-channel-* named them
	listen(dead, true)
	deadSock := filepath.Join(dead, channelSocketName)
	empty := mk("ptyhost-channel-1002", 0o700)

	live := mk("ptyhost-channel-1003", 0o700)
	listen(live, false)
	young := mk("ptyhost-channel-1004", 0o700)
	listen(young, true)
	youngEmpty := mk("ptyhost-channel-1005", 0o700)
	other := mk("ptyhost-channel-1006", 0o700)
	listen(other, true)
	if err := os.WriteFile(filepath.Join(other, "notes"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	open := mk("ptyhost-channel-1007", 0o755)
	listen(open, true)
	notOurs := mk("something-else", 0o700)
	target := mk("target", 0o700)
	link := filepath.Join(tmp, "ptyhost-channel-1008")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	// Aged after their contents, which touch a directory's times.
	age(dead, deadSock, empty, live, filepath.Join(live, channelSocketName), other,
		filepath.Join(other, channelSocketName), open, filepath.Join(open, channelSocketName), notOurs, target)
	// young and youngEmpty stay fresh: a plugin just starting, between
	// making its directory and listening.

	if n := sweepChannelDirs(tmp, now); n != 2 {
		t.Errorf("removed %d directories, want 2 (the dead plugin's and the empty one)", n)
	}
	for _, gone := range []string{dead, empty} {
		if _, err := os.Lstat(gone); !os.IsNotExist(err) {
			t.Errorf("%s: %v; want it removed", filepath.Base(gone), err)
		}
	}
	for _, kept := range []string{live, young, youngEmpty, other, open, notOurs, target, link} {
		if _, err := os.Lstat(kept); err != nil {
			t.Errorf("%s: %v; want it left", filepath.Base(kept), err)
		}
	}
	if _, err := net.Dial("unix", filepath.Join(live, channelSocketName)); err != nil {
		t.Errorf("the live plugin's socket: %v", err)
	}
}

// The first byte channel of a plugin process sweeps its temporary
// directory.
func TestFirstChannelSweeps(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	sweepOnce = sync.Once{}
	t.Cleanup(func() { sweepOnce = sync.Once{} })
	dead := filepath.Join(tmp, "ptyhost-channel-1001")
	if err := os.Mkdir(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * channelSweepAge)
	if err := os.Chtimes(dead, old, old); err != nil {
		t.Fatal(err)
	}
	l := &channelListener{logger: hclog.NewNullLogger()}
	o, addr := l.offer(nil)
	if o == nil {
		t.Fatal("no offer")
	}
	defer l.close()
	if filepath.Dir(filepath.Dir(addr)) != tmp {
		t.Fatalf("the socket %s is not in TMPDIR %s", addr, tmp)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Lstat(dead); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dead plugin's directory is still there 5 s after the first channel")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Lstat(filepath.Dir(addr)); err != nil {
		t.Errorf("the channel's own directory: %v", err)
	}
}
