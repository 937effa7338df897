// The plugin's entry point (see doc.go).

package main

import "github.com/ptyhost/ptyhost/shared"

func main() {
	shared.Serve(New(shared.Logger().Named("docker")))
}
