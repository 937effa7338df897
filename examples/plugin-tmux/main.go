// Command ptyhost-plugin-tmux is a third-party ptyhost environment plugin
// for type TMUX: each session is a tmux session on a dedicated tmux server,
// so the programs in it can outlive the ptyhost server that started them.
// Put the binary in the server's plugin directory; it is not meant to be
// run by hand. See README.md.
//
// # Lifecycle and concurrency
//
// Tmux (tmux.go) is safe for concurrent use and holds no per-session state.
// Spawn starts the session's tmux session, then a tmux client attached to
// it in a pseudo-terminal of the plugin's (session.go). Each session runs
// two goroutines: the watcher waits for the session's command to exit
// (watch.go), reads its status from the dead pane and kills the tmux
// session, and the waiter waits for the client to exit and settles the
// status Wait reports; both end once the client has exited. A session
// follows shared.PTY's contract: one reader; Write and Resize from another
// goroutine; Kill and Close from any. The tmux session outlives the plugin
// when the config keeps it.
package main

import "github.com/ptyhost/ptyhost/shared"

func main() {
	shared.Serve(New(shared.Logger().Named("tmux")))
}
