//go:build !unix

package pluginlog

import "os"

// openLog opens the log file at path for reading.
func openLog(path string) (*os.File, error) { return os.Open(path) }
