// Command ptyhost-plugin-host is the environment plugin for type HOST: it
// runs sessions as local processes on the machine the plugin runs on, each
// in its own pseudo-terminal and session. Put it in the host's plugin
// directory; it is not meant to be run by hand.
package main

import "github.com/ptyhost/ptyhost/shared"

func main() {
	logger := shared.Logger().Named("host")
	h := New(logger)
	orphans, err := adoptOrphans()
	if err != nil {
		// Sessions still work; what their processes orphan goes to init
		// and is out of Kill's reach.
		logger.Warn("orphaned session processes will not be adopted", "error", err)
	}
	h.orphans = orphans
	shared.Serve(h)
}
