// Package e2etest runs end-to-end tests against a real ptyhost server: it
// starts `ptyhost serve` (the binary from internal/testbin, or the same
// run function in-process) with real plugin binaries and a temporary data
// directory, waits until it serves, drives it over the REST API and
// attaches to sessions with the ptyhost.v1 protocol client, and stops or
// kills it when the test asks or ends.
//
// Every wait has a deadline and fails the test with what it was waiting
// for and what it saw; nothing sleeps a fixed time. A Server and its
// helpers may be used from the test's goroutine; Do may be called from
// any goroutine. The test's cleanup stops a server still running with
// every session hung up (SIGTERM with --hang-up-on-stop, which Start
// passes unless Options.KeepSessions; else a stop request asking to hang
// up) and fails the test if it does not exit, or exits with an error,
// within 30 s. A test may kill a server with SIGKILL (Kill) and start
// another on the same data directory and database (Restart, or Start with
// Options): the plugin processes of the first keep its sessions for the
// second, for DefaultOrphanTimeout unless the test says otherwise.
package e2etest
