// Package pluginlog keeps a plugin process's log while no server reads
// its stderr, and relays it into the log of the server that reattaches to
// the process, or finds it exited.
//
// A plugin logs to its stderr, a pipe to the server that started it,
// which logs each line it reads. A plugin a server holds outlives it
// (shared.Keeper): once that server has died or stopped, the pipe has
// nobody at its other end, and what the plugin logged from then on —
// its orphan timeout running out, the sessions it hung up, a panic — was
// lost. So the plugin (shared.Serve) points its stderr at a file of its
// own in the plugin socket directory (Stderr.Redirect), which only the
// server's user can reach, and a server that reattaches to the process
// relays the file's lines as they come (Follow), and one that finds the
// process exited relays what is left and removes the file (Drain).
//
// A file is emptied once it holds MaxSize bytes, and begins with a line
// that says so; where a server left off is kept beside the file (its
// offset and first line), so that the next server relays each line once.
package pluginlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MaxSize is the most bytes a log file holds: the plugin empties it
// before a line would take it past.
var MaxSize int64 = 1 << 20

// File returns the path of the log file of plugin process pid in the
// plugin socket directory dir.
func File(dir string, pid int) string {
	return filepath.Join(dir, "plugin-"+strconv.Itoa(pid)+".log")
}

// posFile is where a server keeps where it left off in path.
func posFile(path string) string { return path + ".pos" }

// Leftovers returns the pids whose log files are in dir.
func Leftovers(dir string) []int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), "plugin-")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		name, ok = strings.CutSuffix(name, ".log")
		if pid, err := strconv.Atoi(name); ok && err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Remove removes the log file of pid in dir, and the note of where a
// server left off in it, with the note's temporary file a server killed
// while it wrote one left.
func Remove(dir string, pid int) {
	path := File(dir, pid)
	_ = os.Remove(path)
	_ = os.Remove(posFile(path))
	_ = os.Remove(posFile(path) + ".tmp")
}

// emptiedLine begins a file the plugin emptied at now. Its time tells it
// from the first line of the file before (see reader.relay).
func emptiedLine(size int64, now time.Time) []byte {
	return fmt.Appendf(nil, `{"@level":"warn","@message":"the plugin's log file held %d bytes and was emptied: lines no server relayed before are lost","@timestamp":%q}`+"\n",
		size, now.Format("2006-01-02T15:04:05.000000Z07:00"))
}
