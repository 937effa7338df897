//go:build !linux

package pluginhost

import "os"

// fdExecPath: only Linux executes an open file through /proc; elsewhere
// the executable is started by its path.
func fdExecPath(*os.File) (string, bool) { return "", false }

// foreignOwner: not checked outside Linux.
func foreignOwner(os.FileInfo) bool { return false }
