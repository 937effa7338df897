// Command ptyhost-plugin-ssh is the environment plugin for type SSH: it
// runs sessions on a remote host over SSH (golang.org/x/crypto/ssh), each
// in its own pseudo-terminal. Put it in the host's plugin directory; it is
// not meant to be run by hand. docs/environments.md documents the config.
//
// # Connections
//
// An environment's sessions share its SSH connections: every session is a
// "session" channel on one of them. The pool (pool.go) puts a session on
// the first connection with room and dials one on the first Spawn that
// finds none (concurrent Spawns wait for that dial), up to the config's
// max_connections. A server caps the sessions of one connection
// (OpenSSH's MaxSessions, 10 by default) by refusing a channel: the
// connection is then full, the pool learns how many sessions a connection
// holds, and the Spawn goes on to another connection at once
// (capacity.go); below that count, a refusal is taken for a slot the
// server has not freed yet and retried for up to 2 s first. A connection is kept while sessions use it and for the
// config's linger after the last one ends, so rapid re-creates reuse it,
// and replaced on a later Spawn once it has died. A goroutine per
// connection sends keepalive@openssh.com requests; when keepalive_count of
// them in a row go unanswered, it closes the connection, and every session
// on it ends with ExitStatus{Code: -1, Reason: "ssh connection to HOST
// lost: keepalive unanswered …"} (or the transport's own reason when the
// server went away; through a jump host, "ssh connection to HOST through
// jump host JUMP lost: …", saying whether the jump host's connection or
// the tunnel to HOST ended), which the core records as ERROR.
//
// # Sessions
//
// Spawn opens a channel, sends env requests (COLORTERM=truecolor, the
// config's env and the session's; falling back to exports in the command
// line for names the server refuses), a pty-req with TERM and the size,
// and an exec request whose command line quotes every part (command.go),
// then waits for the start marker, so a missing directory or
// command is a Spawn error. Spawn as a whole is bounded by connect_timeout.
// Output is the channel's bytes, untouched; the exit status follows the
// last byte. The start marker carries the remote shell's pid, which the
// command keeps (exec) and which sshd made a session leader: Kill sends
// SIGHUP to that whole process group (and session, where the remote has
// pkill) by running kill on a second channel, and by a signal request;
// after a grace, SIGKILL the same ways, and it closes the channel. Close
// sends SIGKILL to the group if the command still runs (or a Kill is under
// way), closes the channel and gives the connection back to the pool.
//
// # Concurrency
//
// SSH is safe for concurrent use. The pool's mutex guards the groups of
// connections and their reference and session counts; channel opens on
// one connection go one at a time; each connection's goroutines (dial,
// watch, keepalive) end when it closes; SSH.Close closes them all and
// waits. For one session, the gRPC server calls Read from one
// goroutine, Write and Resize from another, Kill from any, Close last.
package main
