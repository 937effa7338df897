//go:build unix

package pluginlog

import (
	"errors"
	"os"
	"syscall"
)

// openLog opens the log file at path for reading, only if it is a regular
// file: a plugin may put anything at that name, and opening a FIFO would
// wait for a writer forever, a device might do worse.
func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, errors.New("not a regular file")
	}
	return f, nil
}
