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
// SIGTERM and fails the test if it does not exit, or exits with an error,
// within 30 s.
package e2etest
