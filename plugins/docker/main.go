// The plugin's entry point (see doc.go).

package main

import "github.com/ptyhost/ptyhost/shared"

func main() {
	shared.VersionFlag("ptyhost-plugin-docker")
	shared.Serve(New(shared.Logger().Named("docker")))
}
