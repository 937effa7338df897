// Package core keeps live terminal sessions: it creates them through
// environment plugins, pumps their output into a scrollback ring, fans it
// out to attached clients, and records their status in a store.
//
// # Lifecycle
//
// New returns a Manager; Close hangs up every session, records their status
// and waits for every goroutine the manager started. Detach stops it
// instead without ending the sessions: clients are closed with 1012
// (CloseRestart), each PTY is detached so its plugin keeps the session,
// and the records stay live; Reconcile, in the next server on the same
// database, takes those sessions up again from the plugins that kept them
// (SurvivorSource), and records the others as lost. CreateSession reserves
// the id in the session map before it asks the plugin, so two concurrent
// creates of one id cannot both spawn; any failure after that point cleans
// up what was made and records the session as ERROR. DestroySession closes
// the clients, kills the process, has the plugin clean up and records
// TERMINATED; each failing step is logged and destruction goes on.
//
// A session whose process exits stays attachable for Options.Linger, so a
// reconnecting client sees the end and the exit code. A running session
// with no writing client attached is IDLE (viewers, read-only, count for
// nothing here); it stays until it exits or is destroyed, unless it has
// an idle timeout (see idletimeout.go).
//
// # Concurrency
//
// Manager.mu guards the session map only. A session holds no pointer back
// to its Manager: what it needs (the clock, the store writer, metrics,
// events, the scrollback settings, and callbacks for its exit and its
// clients' detaching) comes in one sessionDeps the Manager builds in New.
//
// Each session has one output pump, the only goroutine that reads its PTY
// (session.go). The pump scans what it reads for safe points (scan.go)
// outside any lock, then appends the bytes and the points to the session's
// ring (ring.go) under session.mu and wakes the attachments (attach.go).
// Each Attachment reads the ring at its own absolute offset from the
// goroutine that calls Next. The pump waits, before reading, for writing
// clients that fall behind while they keep reading, so that each gets
// every byte at the pace of the slowest, but for a client that stops
// reading only keepUpWindow (500 ms) at most, and never for a viewer
// (flow.go); a client that falls behind the ring's oldest byte gets a
// FrameReset and a replay from the oldest safe point. Nothing writes to a
// network connection while holding a lock.
//
// Store writes never run on the output path: they are queued, merged per
// session and written by one goroutine, which retries failures. Events are
// delivered on channels from Subscribe and never block a session.
//
// Package core/api serves the REST and WebSocket API over a Manager, using
// its exported methods alone; core/wsproto is the wire protocol. See
// docs/design.md for a map of the packages and of the path output bytes
// take, file by file.
package core
