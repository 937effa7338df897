// Package shared is the SDK for ptyhost environment plugins, and the host's
// side of the same protocol.
//
// An environment plugin is a separate executable, named ptyhost-plugin-*,
// that starts terminal sessions somewhere: on this machine, in a container,
// on a remote host. The host (ptyhost's core) runs each plugin once, over
// hashicorp/go-plugin with gRPC, and talks to it only through the plain Go
// interfaces of this package; generated protobuf types never appear in
// them.
//
// # Writing a plugin
//
// Implement Environment (Info and Spawn) and, for each session, PTY. Add
// ConfigValidator or HealthChecker if the plugin can check configurations
// or its dependencies, and announce them (and CapResize) in Info's
// Capabilities. Then main is one call:
//
//	func main() { shared.Serve(myenv.New(shared.Logger().Named("myenv"))) }
//
// What every plugin repeats is here too: DecodeConfig decodes a config
// strictly, with errors that name the field's path (ConfigError);
// CheckEnv and CheckPortableEnv check environment variables; WorkingDir
// resolves a local working directory; ChildEnvWithout builds a child's
// environment without the plugin's own variables and without those the
// request's UnsetEnv names, on EnvInDir's base (PWD the child's
// directory). A plugin that runs
// local programs returns StartCommand's PTY from Spawn; one that writes
// its own PTY can build on OpenPTY, ResizePTY and Terminal. Work a plugin
// runs beside serving goes in RunBackground (BackgroundRunner), which
// Serve starts. examples/plugin-minimal is a whole plugin in 58 lines.
//
// Serve does the handshake, serves the gRPC service and logs JSON to stderr
// through Logger, which the host forwards into its own log under the
// plugin's name. Errors keep their identity across the process boundary:
// return (or wrap) the sentinels of errors.go, and errors.Is finds them in
// the host, with your message. sharedtest.Run checks an implementation
// against the contract.
//
// # Lifecycle
//
// The host calls Info once at start-up. Each Spawn starts one session and
// returns its PTY; a failing Spawn must leave nothing behind. The host then
// reads output until io.EOF (which means the child exited and every byte was
// delivered), calls Wait for the exit status, and finally Close, exactly
// once. Kill may come at any time before Close; output written before it is
// still delivered, then io.EOF. Close may come while a Read is blocked (the
// host gave up on a live session) and must make it return.
//
// Across the wire, a session is one bidirectional gRPC stream: the spawn
// request, then input and resize frames down; output frames (raw bytes, at
// most MaxFrameSize each, coalesced under load) and one exit frame up, every
// output byte before the exit frame. Kill and Close are unary calls by
// session id. The plugin keeps a session until Close, or until the stream
// ends without one (the host went away), in which case it kills and closes
// the session itself. When the host stops the plugin, Serve kills and closes
// whatever is still open before it returns.
//
// A host and a plugin built with this package carry a session's bytes on a
// byte channel instead (bytechannel.go), a Unix socket beside the stream:
// the output goes up it unframed, input and resizes down it, and the
// stream, which then carries only the control, is released (ended) once
// the channel is open: the channel closing is the stream ending, and
// SessionEnd answers the exit status. Where no channel can be made, the
// stream carries everything, as above. docs/plugins.md, "The byte
// channel", has the wire format.
//
// # Sessions that outlive the host
//
// The SDK reads each session's output from its spawn on, into a buffer of
// the session's scrollback size (keepRing), whether or not a stream serves
// it; a stream sends from that buffer. While a stream serves the session
// the reader never overwrites bytes the stream has not sent (it stops
// reading, which is the backpressure); with none it overwrites the oldest,
// so the program never blocks. A host that opens the Host stream
// (Keeper.Hold) holds the plugin: from then on a stream that ends without
// Close leaves its session kept, the plugin outlives its parent, and when
// no Host stream is open for the orphan timeout the plugin hangs every
// session up and exits. A host that comes back lists the kept sessions
// (Keeper.Sessions) and attaches to them from an offset (Keeper.Attach);
// one stream serves a session at a time, a new attach taking over. A
// plugin no host held behaves as described above.
//
// # Concurrency
//
// An Environment must be safe for concurrent use: sessions are spawned in
// parallel. For one PTY, the plugin's server calls Read from one goroutine;
// Write and Resize from another, in the order the host sent them; Kill from
// any goroutine; and Close last (but see above about a blocked Read). The
// server never calls Write, Resize or Kill after Close.
//
// On the host side, GRPCClient is the Environment and its PTYs follow the
// same contract. Their Read receives the output (from the byte channel, or
// the stream's frames) in the caller's goroutine, so a host that stops
// reading applies backpressure to the plugin through the socket, or gRPC's
// flow control. If the plugin process dies or the stream breaks, Read and
// Wait return an error wrapping ErrPluginExited; if the plugin's own PTY
// failed (its Read or Wait returned an error), an error carrying the
// plugin's message, which does not; after Close, they return an error
// saying the session is closed; after Detach, ErrDetached.
//
// On the plugin's side, each session has one reader goroutine (from spawn
// to close or end of output), and each session stream an input goroutine
// and its handler sending output; keepRing's mutex orders the reader and
// the one stream sending.
package shared
