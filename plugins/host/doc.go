// Command ptyhost-plugin-host is the environment plugin for type HOST: it
// runs sessions as local processes on the machine the plugin runs on, each
// in its own pseudo-terminal and session. Put it in the host's plugin
// directory; it is not meant to be run by hand. docs/environments.md
// documents the config.
//
// # Lifecycle
//
// main makes the process a child subreaper on Linux (orphans_linux.go), so that
// what a session's processes leave behind when their parent dies stays
// within Kill's reach, and serves through shared.Serve. Spawn (host.go)
// starts the command as the leader of a new session with the
// pseudo-terminal as its controlling terminal (pty.go). On Linux no
// goroutine, thread or pidfd waits for each leader: the orphanage notices
// a leader's exit on SIGCHLD and leaves it a zombie until Close
// (leaders_linux.go), so a session holds one fd, its terminal. Read returns the terminal's output
// until the leader has exited and the terminal is drained, then io.EOF;
// Wait then reports the exit. Kill sends SIGHUP to every process in the
// session and, from a goroutine, SIGKILL after a grace to whatever is left;
// Close kills what still runs, reaps the leader and closes the terminal.
//
// # Concurrency
//
// Host is safe for concurrent use and holds no per-session state. A session
// (*hostPTY) follows shared.PTY's contract: one reader; Write and Resize
// from another goroutine; Kill and Close from any, each at most once in
// effect. The orphanage's startMu keeps its reaper, run on SIGCHLD, from
// taking the exit status of a leader Spawn has just forked but not yet
// registered.
package main
