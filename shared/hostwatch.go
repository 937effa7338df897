package shared

import "os"

// A plugin's host is the server process that started it, whose pid the
// server gives in HostPIDEnv. It is not always the plugin's parent: a
// plugin installed as a wrapper script that runs the real executable
// without exec has the script's shell for its parent, which outlives a
// host killed with SIGKILL. So watchHost asks whether the host process
// itself still runs (newHostWatch), not whether the plugin's parent is
// still the host.

// reparented reports whether a plugin whose parent was host when it
// started has a parent other than host now: certain proof that the host
// exited, which no reused pid can fake.
func reparented(parent, host int) bool {
	return parent == host && os.Getppid() != host
}
