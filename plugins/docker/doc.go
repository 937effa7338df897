// Command ptyhost-plugin-docker is the environment plugin for type DOCKER:
// each session runs in a new container of the environment's image, or as a
// process exec'd into an existing container, through the Docker Engine API
// (github.com/moby/moby/client, API version negotiated with the daemon).
// Put it in the host's plugin directory; it is not meant to be run by hand.
// The configuration is documented in docs/environments.md.
//
// # Lifecycle
//
// main serves; beside the serving, shared.Serve runs RunBackground
// (background.go), which cleans up the containers that plugin processes
// which are gone left behind (reap.go). Spawn pings the daemon (unreachable:
// shared.ErrUnavailable), checks the image and, in image mode, creates the
// container (create.go). With a direct terminal (direct.go, the default
// where it can be) the container's command is this binary as pty-init
// (ptyinit_linux.go), which hands the container's terminal to the plugin
// over a unix socket, so that the plugin reads and writes it as the HOST
// plugin does; otherwise, or when the direct terminal fails at its start
// for a reason of its own (directfault.go), the plugin attaches to the
// container's TTY. Either
// way it registers the wait for the exit before the start, so that no
// output and no exit is missed (container.go); in exec mode it execs into
// the running container (exec.go). When the image must be pulled, Spawn
// returns at once and the start continues in the background behind the
// pull's progress lines (pull.go). Read returns the terminal's raw bytes
// until it ends; Wait then reports the exit code the daemon gives, or,
// when the daemon went away, code -1 and a reason.
// Kill hangs up (SIGHUP, then SIGKILL after a grace) in the background;
// Close removes the container the session created, never an exec target.
//
// # Concurrency
//
// Docker is safe for concurrent use; it holds one pair of clients per
// daemon address (daemon.go). A session (session.go) follows shared.PTY's
// contract: one reader; Write and Resize serialized by the session's
// inputMu; Kill and Close from any goroutine.
package main
