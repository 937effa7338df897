// Command ptyhost-plugin-tmux is a third-party ptyhost environment plugin
// for type TMUX: each session is a tmux session on a dedicated tmux server,
// so the programs in it can outlive the ptyhost server that started them.
// Put the binary in the server's plugin directory; it is not meant to be
// run by hand. See README.md.
package main

import "github.com/ptyhost/ptyhost/shared"

func main() {
	shared.Serve(New(shared.Logger().Named("tmux")))
}
