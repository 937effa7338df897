// Command ptyhost runs the ptyhost server and talks to one.
//
//	ptyhost serve            run the server
//	ptyhost stop             stop it, leaving (or --hang-up ending) the sessions
//	ptyhost run -- CMD...    create a session and attach to it
//	ptyhost attach ID        attach this terminal to a session
//	ptyhost ls [-a] [-q]     list sessions (running ones by default)
//	ptyhost kill ID...       destroy sessions (IDs or unique prefixes)
//	ptyhost prune            delete the records of ended sessions
//	ptyhost restart ID...    restart sessions' programs in place
//	ptyhost rec ID           write a session's recording to stdout
//	ptyhost env ls|show|add|update|health|rm    manage environments
//	ptyhost plugins          list plugins; plugins restart NAME restarts one
//	ptyhost nodes            list the nodes of the server's cluster (nodes.go);
//	                         nodes rm NAME removes one gone for good
//	ptyhost version          print the version (version.go; also --version)
//	ptyhost completion SH    print a completion script for bash, zsh or fish
//
// # Serving
//
// serve (serve.go) opens the database (core/gormstore) and claims it (a
// second server on the same database is refused; a node of a cluster
// registers its name instead, cluster.go), reattaches to the plugin
// processes a previous server on the data directory left running and
// starts the others (core/pluginhost), creates the core.Manager, takes up
// the sessions the plugins kept and records as ERROR the other sessions a
// previous run left live (Reconcile), and serves the HTTP API and /metrics
// on one listener. The first SIGINT or SIGTERM, or a stop request ('ptyhost
// stop'), stops it within --shutdown-timeout (servestop.go): the listener
// stops accepting and at once, by default, the server detaches from every
// session (clients get close code 1012 and reconnect) and leaves the plugin
// processes running them for the next server, which they wait for during
// --orphan-timeout; with --hang-up-on-stop or 'ptyhost stop --hang-up',
// every session is hung up instead (its clients get its last output, its
// exit and close code 1001) and the plugins stop. Then the claim is given
// up and the database closes, all within the one --shutdown-timeout, and
// the server exits 0 (also when another server took its database over).
// A node that stops because it lost its lease exits 75 instead, for its
// supervisor to start it again. A second signal ends the process at once.
//
// # Client commands
//
// The other commands talk to a server over its REST API and, to attach,
// the WebSocket protocol of docs/protocol.md. SIGINT, SIGTERM, SIGQUIT
// and SIGHUP end them gracefully, and a write to a pipe whose reader is
// gone fails with EPIPE rather than killing them (notifyContext). attach
// puts a terminal stdin in raw mode and always restores it before it
// returns; it reads the connection in one goroutine, forwards window-size
// changes in another, and waits for both, so nothing writes to stdout
// after it returns (only the goroutine blocked reading stdin may outlive
// it, and it touches no output).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
)

func main() {
	ctx, stop := notifyContext(len(os.Args) > 1 && os.Args[1] != "serve")
	err := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr})
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// signalError is the cause of a context that a signal ended, as
// signal.NotifyContext words it ("interrupt signal received").
type signalError struct{ sig os.Signal }

func (e signalError) Error() string { return e.sig.String() + " signal received" }

// notifyContext returns a context that the first SIGINT or SIGTERM ends,
// with a signalError as its cause: it starts a graceful stop. Once it has,
// those signals' default action is back, so a second one ends the process
// at once.
//
// For a client command (client), SIGQUIT does the same, and so does
// SIGHUP: a hangup means the terminal, and the user with it, is gone, so
// attach restores the terminal and run destroys its session as on SIGTERM.
// A hangup often comes twice (the kernel's, then the shell's to its jobs):
// after the first signal, SIGHUP stays caught and is ignored, so that it
// cannot cut that cleanup short. A client also catches SIGPIPE: a write
// to a pipe whose reader is gone ('ptyhost attach ID | head') then fails
// with EPIPE, instead of the signal killing the process before the
// terminal is restored and run's session destroyed (exitCode). Caught
// signals, unlike ignored ones, are not inherited by the processes the
// CLI starts. serve keeps the default actions of these (a hangup ends
// it at once, as a crash does: the plugins keep the sessions for the
// next server).
func notifyContext(client bool) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	stopping := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if client {
		stopping = append(stopping, syscall.SIGQUIT)
		signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE) // never read
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, stopping...)
	if client {
		signal.Notify(ch, syscall.SIGHUP)
	}
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			cancel(signalError{sig})
			signal.Reset(stopping...) // SIGHUP stays caught, and ignored
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			close(done)
			cancel(context.Canceled)
		})
	}
}

// stdio is the command's standard streams, so tests can run commands
// in-process.
type stdio struct {
	in  io.Reader
	out io.Writer
	err io.Writer
}

// exitError carries a specific process exit code, such as an attached
// session's own exit code.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a command-line mistake; it exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error, stderr io.Writer) int {
	var ee exitError
	var ue usageError
	switch {
	case err == nil:
		return 0
	case stdoutGone(err):
		// stdout is a pipe whose reader went away ('ptyhost ls | head'):
		// silently, with the status of a program SIGPIPE killed, as the
		// shell reports the other commands of a pipeline (main).
		return 128 + int(syscall.SIGPIPE)
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "ptyhost:", printableMessage(ue.msg))
		return 2
	default:
		// An error may carry the server's text (an API error's message,
		// a session's ID): printed as it is safe to (printable.go).
		fmt.Fprintln(stderr, "ptyhost:", printableMessage(err.Error()))
		return 1
	}
}

// stdoutGone reports whether err is a write to stdout that failed with
// EPIPE: its reader is gone. (A connection to the server that breaks is
// no *os.PathError.)
func stdoutGone(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && pe.Op == "write" && pe.Path == os.Stdout.Name() && errors.Is(pe.Err, syscall.EPIPE)
}

const usage = `ptyhost hosts interactive terminal sessions.

Usage:
  ptyhost serve [flags]                 run the server
  ptyhost stop [--hang-up]              stop the server, leaving the sessions
                                        running for the next one (or not)
  ptyhost run [--env ID] [--cwd DIR] -- CMD...
                                        create a session and attach to it
  ptyhost attach ID                     attach this terminal to a session
  ptyhost ls [-a] [-q] [--filter K=V]   list sessions (running ones by default)
  ptyhost kill ID...                    destroy sessions (ID or unique prefix)
  ptyhost prune                         delete the records of ended sessions
  ptyhost restart ID...                 restart sessions' programs in place
  ptyhost rec ID > FILE.cast            write a session's recording (asciicast)
  ptyhost env ls|show|add|update|health|rm  manage environments
  ptyhost plugins [ls|restart NAME]     list plugins, or restart one
  ptyhost nodes [ls|rm NAME...]         list the nodes of the server's cluster,
                                        or remove nodes gone for good
  ptyhost version                       print the version (also --version)
  ptyhost completion bash|zsh|fish      print a shell completion script

Run 'ptyhost COMMAND --help' (or 'ptyhost help COMMAND') for a command's
flags.
`

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, args []string, io stdio) error {
	if len(args) == 0 {
		fmt.Fprint(io.err, usage)
		return usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help":
		if len(rest) > 0 {
			// 'ptyhost help run' is 'ptyhost run --help'; 'ptyhost help
			// env add', 'ptyhost env add --help'. Nothing else is passed
			// on: 'help run echo hi' must not run echo.
			words := 1
			if len(rest) > 1 && (rest[0] == "env" || rest[0] == "plugins" || rest[0] == "nodes") {
				words = 2
			}
			if len(rest) > words {
				return usageError{fmt.Sprintf("help takes a command's name (and an env, plugins or nodes subcommand's), not %q", strings.Join(rest[words:], " "))}
			}
			return run(ctx, append(slices.Clip(rest), "--help"), io)
		}
		_, err := fmt.Fprint(io.out, usage)
		return err
	case "-h", "--help":
		_, err := fmt.Fprint(io.out, usage)
		return err
	case "serve":
		return runServe(ctx, rest, io)
	case "stop":
		return runStop(ctx, rest, io)
	case "run":
		return runRun(ctx, rest, io)
	case "attach":
		return runAttach(ctx, rest, io)
	case "ls":
		return runLs(ctx, rest, io)
	case "kill":
		return runKill(ctx, rest, io)
	case "prune":
		return runPrune(ctx, rest, io)
	case "restart":
		return runRestart(ctx, rest, io)
	case "rec":
		return runRec(ctx, rest, io)
	case "env":
		return runEnv(ctx, rest, io)
	case "plugins":
		return runPlugins(ctx, rest, io)
	case "nodes":
		return runNodes(ctx, rest, io)
	case "version", "--version":
		return runVersion(ctx, rest, io)
	case "completion":
		return runCompletion(ctx, rest, io)
	default:
		fmt.Fprint(io.err, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}
