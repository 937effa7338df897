// Command ptyhost-plugin-host is the environment plugin for type HOST: it
// runs sessions as local processes on the machine the plugin runs on, each
// in its own pseudo-terminal and session. Put it in the host's plugin
// directory; it is not meant to be run by hand.
package main

import "github.com/ptyhost/ptyhost/shared"

func main() {
	shared.Serve(New(shared.Logger().Named("host")))
}
