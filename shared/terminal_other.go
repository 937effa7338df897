//go:build !unix

package shared

import "os"

// terminalInput returns nil: terminals are for Unix.
func terminalInput(PTY) *os.File { return nil }
