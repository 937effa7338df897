package shared

import "errors"

// Sentinel errors that keep their identity across the plugin boundary: an
// adapter returns (or wraps) one, and errors.Is finds it in the host. The
// mapping to gRPC status codes is the table in codes.go, used by both sides.
var (
	// ErrSessionNotFound: the plugin has no session by that id.
	ErrSessionNotFound = errors.New("session not found")
	// ErrAlreadyExists: something by that id exists already.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidConfig: the environment's configuration is not usable.
	ErrInvalidConfig = errors.New("invalid environment config")
	// ErrInvalidArgument: a request's argument is out of range.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrUnavailable: what the environment depends on (a daemon, a remote
	// host) cannot be reached now.
	ErrUnavailable = errors.New("environment unavailable")
	// ErrUnsupported: the plugin does not implement the operation.
	ErrUnsupported = errors.New("unsupported")
	// ErrPluginExited: the plugin process went away mid-call.
	ErrPluginExited = errors.New("plugin exited")
	// ErrPluginProtocol: the plugin answered what the protocol does not
	// allow — a frame out of place, a message larger than the host takes —
	// while its process may well be running. The host ends the call (a
	// session: with this error as its reason, not plugin_crashed). The
	// host finds most such breaks itself; the SDK's server reports one
	// it finds (a Spawn that returned no PTY and no error) with a message
	// that starts with this error's and no ErrorDetail kind, which the
	// host's client turns back into it (fromStatus in codes.go), so it has
	// no row in codes.go's table.
	ErrPluginProtocol = errors.New("the plugin broke the protocol")
	// ErrPermissionDenied: the request asks for something the host's
	// policy forbids, such as a path outside SpawnRequest.WorkdirRoots.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrDetached: the host detached the session's PTY (Detacher): the
	// session goes on in the plugin, but this PTY no longer reaches it.
	// It never crosses the wire, so it has no row in codes.go.
	ErrDetached = errors.New("session detached")
	// ErrChildExited: a PTY's Write once the session's process has ended:
	// the input is dropped. A Write blocked on a terminal whose program
	// stopped reading returns it when the program ends, rather than
	// waiting forever for room (after the program exits, Linux takes a few
	// KiB more input, then is full for good); Terminal's does (see
	// Terminal.ChildExited). The SDK logs a Write's error and goes on, so
	// it has no row in codes.go either.
	ErrChildExited = errors.New("the session's process exited: input dropped")
)
