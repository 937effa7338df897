package main

import "github.com/ptyhost/ptyhost/shared"

func main() {
	shared.VersionFlag("ptyhost-plugin-host")
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
