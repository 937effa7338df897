//go:build unix

package pluginlog

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A FIFO (or a link) at a log file's name is not read: opening a FIFO
// would wait for a writer forever.
func TestFollowReadsOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	const pid = 77
	if err := syscall.Mkfifo(File(dir, pid), 0o600); err != nil {
		t.Fatal(err)
	}
	var c collect
	done := make(chan struct{})
	go func() { Drain(dir, pid, c.line); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Drain of a FIFO does not return")
	}
	target := filepath.Join(dir, "elsewhere")
	appendFile(t, target, "secret\n")
	if err := os.Symlink(target, File(dir, pid)); err != nil {
		t.Fatal(err)
	}
	Drain(dir, pid, c.line)
	if got := c.got(); len(got) != 0 {
		t.Errorf("relayed %q from a FIFO and a link", got)
	}
}
