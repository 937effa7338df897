// Package pluginhost runs ptyhost's environment plugins: separate
// executables (ptyhost-plugin-NAME) spoken to over hashicorp/go-plugin gRPC
// through the SDK in package shared. It finds them in a directory, starts
// the built-in ones and those the configuration names (Config: pins, extra
// variables, arguments), supervises their processes, caches their health
// answers, exports their state as Prometheus metrics, and logs their
// output through the server's slog logger (hcLogger).
//
// *Plugins is a core.Dispatcher and a core.PluginController: the core
// reaches plugins only through those interfaces and never imports this
// package. The states, listings and errors it returns (core.PluginStatus,
// core.ErrNoPlugin, …) are declared in core, as the contract's.
//
// # Lifecycle
//
// Load validates the Options, finds the executables, reattaches to the
// processes a previous server left running (below) and returns: each other
// plugin is started in the background by a supervisor goroutine of
// its own (supervised.run), the only goroutine that starts and stops that
// plugin's processes, so launches of one plugin never overlap and a slow
// plugin holds up only its own environment types. Started is closed once
// every first launch has ended; WaitType waits for one type. A process is
// one generation: when it dies (seen from the process, by a pidfd or
// waitid, not from its pipes) the sessions it served end with reason plugin_crashed and the
// supervisor starts it again after an exponential backoff, until too many
// crashes in a window open the circuit; Restart (an operator's request)
// ends its sessions with reason plugin_restarted, closes the circuit and
// starts it again. Shutdown (or Close) stops every process — asked first,
// its process group killed after a grace period or when the ctx ends — and
// waits for every supervisor; only the first call of Shutdown, Close or
// Detach does anything.
//
// # Outliving the server
//
// With Options.SocketDir set, every plugin process built with an SDK that
// can is held (shared.Keeper.Hold) for its life, and its reattach record
// (where it listens, its protocol version, its TLS material) is written
// next to its socket, in that private directory. Detach is the server
// leaving without ending sessions: held processes go on running with
// their sessions, their records kept, until a server reattaches to them
// or their orphan timeout (Options.OrphanTimeout) ends them. Load
// reattaches to them before it returns — in parallel, each within a few
// seconds — and they are their plugins' first generation, supervised as
// any other; Survivors lists their sessions for the manager to take up.
// A process that cannot be reattached to is left to its orphan timeout,
// and its plugin launched anew. Shutdown, Restart and a crash remove the
// record. See reattach.go for the details and the trust model.
//
// # Concurrency
//
// Every exported method of *Plugins is safe for concurrent use. Plugins.mu
// guards the type map and the closing state; each supervised plugin's mu
// guards its state, info and current generation. Locks are taken in that
// order — Plugins.mu, a supervised's mu, then Plugins.notifyMu, which is
// taken last, under any other — and none is held across a call to a
// plugin process. Every state change closes a notification channel
// (changes), on which WaitType and the tests wait instead of polling.
package pluginhost
