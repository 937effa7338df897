//go:build unix

package shared

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The sweep takes only the names os.MkdirTemp gives channel directories
// (a prefix and decimal digits): an empty 0700 directory of this user that
// merely starts with the same words, such as the one examples/plugin-tmux's
// TestMain makes with os.MkdirTemp("", "ptyhost-plugin-tmux-test-") and
// fills only when its first test builds the plugin, is left however old.
func TestSweepLeavesDirectoriesNotChannels(t *testing.T) {
	tmp := t.TempDir()
	now := time.Now()
	old := now.Add(-2 * channelSweepAge)
	var dirs []string
	for _, name := range []string{"ptyhost-plugin-tmux-test-12345", "ptyhost-plugin-myenv-build", "ptyhost-channel-x1", "ptyhost-channel-"} {
		dir := filepath.Join(tmp, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, old, old); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	sweepChannelDirs(tmp, now)
	for _, dir := range dirs {
		if _, err := os.Lstat(dir); err != nil {
			t.Errorf("%s is not a byte channel directory (os.MkdirTemp's suffix is decimal digits) but was removed: %v", filepath.Base(dir), err)
		}
	}
}
