package shared

import (
	"context"
	"time"
)

// Sessions that outlive their host. A plugin process built with this SDK
// keeps its sessions when the host that started it stops or dies, as long
// as that host asked it to (Keeper.Hold): each session's output goes on
// being read into a buffer of the session's scrollback size, so the program
// never blocks, and a host that comes back lists the sessions and attaches
// to them from an offset. Plugins get this from Serve without code of
// their own.

// DefaultScrollbackBytes is the output a plugin keeps per session when the
// spawn does not say (SpawnRequest.ScrollbackBytes).
const DefaultScrollbackBytes = 256 << 10

// KeptSession describes a session a plugin process holds.
type KeptSession struct {
	ID              string
	EnvironmentID   string
	EnvironmentType string
	// StartOffset and EndOffset bound the output the plugin keeps:
	// [StartOffset, EndOffset).
	StartOffset int64
	EndOffset   int64
	// Attached is true while a host's session stream serves the session.
	Attached bool
	// Exit is set once the session's process has ended.
	Exit *ExitStatus
}

// Keeper is the host's side of sessions that outlive it. GRPCClient
// implements it.
type Keeper interface {
	// Hold tells the plugin that this host is attached and may come back:
	// from now on a session whose stream ends without Close is kept, not
	// killed, and when no host holds the plugin for orphanTimeout the
	// plugin hangs every session up and exits. The hold lasts until ctx
	// ends, release is called, or the connection breaks (the host died).
	// A plugin built before holds existed answers an error wrapping
	// ErrUnsupported.
	Hold(ctx context.Context, orphanTimeout time.Duration) (release func(), err error)

	// Sessions lists the sessions the plugin holds.
	Sessions(ctx context.Context) ([]KeptSession, error)

	// Attach takes up a session the plugin holds: the PTY's Read returns
	// its output from offset, or from the oldest byte kept if that is
	// later, and start is the offset of the first byte Read returns. ctx
	// bounds the attach only, as Spawn's does. An unknown id wraps
	// ErrSessionNotFound; a session another stream serves is taken over
	// (the other stream ends).
	Attach(ctx context.Context, id string, offset int64) (p PTY, start int64, err error)
}

// Detacher is implemented by the host's PTYs: Detach ends the host's
// stream of the session (or its byte channel) without closing the
// session, which a held plugin keeps for a later Attach (an unheld one
// kills it). Read, Write, Wait, Resize and Kill then fail with an error
// wrapping ErrDetached, not the error they return after Close; Close is
// still to be called, returns nil and does not reach the plugin.
type Detacher interface {
	Detach()
}
