// The plugin's entry point (see doc.go).

package main

import (
	"os"

	"github.com/ptyhost/ptyhost/shared"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == initArg {
		// In a session's container: see direct.go.
		os.Exit(runPTYInit(os.Args[2:]))
	}
	shared.VersionFlag("ptyhost-plugin-docker")
	shared.Serve(New(shared.Logger().Named("docker")))
}
