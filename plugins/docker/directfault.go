package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// What the direct terminal's failures are. One of its own, which the
// daemon's terminal does not have, is an errDirectFailed: it is
// remembered against the daemon (directFailedNow). A failure that may be
// the session's as much, such as its config's, must not be: a typo in a
// network's name would send every session on the daemon through its
// terminal for directRetryAfter. The daemon reports both alike, so fault
// tells them apart by what the daemon's error names, and startUnproven by
// trying the daemon's terminal once.

// errDirectFailed wraps a direct terminal's own failure: the handoff
// socket could not be made (errNoHandoff), the daemon could not create or
// start the container for the plugin's mounts or pty-init (its error
// names them, fault), the daemon's terminal worked where the direct one
// did not start (startUnproven), or the container did not hand its
// terminal over. The session's command has not run; the container is
// gone.
var errDirectFailed = errors.New("no direct terminal")

// directRetryAfter is how long, after a direct terminal failed at its
// start on a daemon, sessions there use the daemon's terminal without
// trying: such failures come from the daemon or the machine (a daemon
// that cannot bind mount the plugin's files, a $TMPDIR without room for
// the socket), and each try costs a container.
const directRetryAfter = 10 * time.Minute

// noDirect returns why the last direct terminal on d failed, if that was
// less than directRetryAfter ago; else nil.
func (d *daemon) noDirect(now time.Time) error {
	d.directMu.Lock()
	defer d.directMu.Unlock()
	return d.failedLately(now)
}

// failedLately is noDirect's answer; d.directMu is held.
func (d *daemon) failedLately(now time.Time) error {
	if now.Sub(d.directFailedAt) >= directRetryAfter {
		return nil
	}
	return d.directFailed
}

// directFailedNow remembers err, a direct terminal's failure at its start
// (errDirectFailed), for noDirect. It reports whether it is news: no
// failure was remembered.
func (d *daemon) directFailedNow(err error, now time.Time) bool {
	d.directMu.Lock()
	defer d.directMu.Unlock()
	news := d.failedLately(now) == nil
	d.directFailed, d.directFailedAt = err, now
	return news
}

// directWorked forgets a failure: a direct terminal just worked on d.
func (d *daemon) directWorked() {
	d.directMu.Lock()
	defer d.directMu.Unlock()
	d.directFailed = nil
}

// unprovenError is a failure to create or start a direct terminal's
// container that does not show whose it is: the daemon's error names none
// of the direct terminal's own files, and is none the session's config
// would cause for certain (a daemon that cannot be reached, a request it
// calls invalid). The config may be at fault — a user the image lacks
// fails the start — as much as the direct terminal. startUnproven tells.
type unprovenError struct{ err error }

func (u *unprovenError) Error() string { return u.err.Error() }
func (u *unprovenError) Unwrap() error { return u.err }

// fault sorts out err, a failure to create or start the container of a
// direct terminal with these mounts, by where it failed. The daemon names
// the file it could not mount or run, and what the session's config gets
// wrong fails the daemon's terminal as well:
//
//   - ctx ended, or the daemon cannot be reached: err, the session's
//     failure, blaming nothing;
//   - the daemon names pty-init or its socket, in the container or on
//     this machine (a daemon in a VM that does not see the plugin's
//     files, a runtime that cannot run the binary): the direct
//     terminal's own failure, errDirectFailed, without the daemon's
//     classification (a 400 for a bind mount it rejects is of the
//     plugin's request, not the session's);
//   - a request the daemon or the plugin calls invalid (a network that
//     does not exist, an image without a command): err, the session's;
//   - anything else: an unprovenError.
func (m *initMounts) fault(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil, errors.Is(err, shared.ErrUnavailable):
		return err
	case m.named(err):
		return fmt.Errorf("%w: %v", errDirectFailed, err)
	case errors.Is(err, shared.ErrInvalidArgument), errors.Is(err, shared.ErrInvalidConfig):
		return err
	}
	return &unprovenError{err}
}

// named reports whether err names one of the direct terminal's own files.
// No mount of the config's can be under initDir (checkMountTarget).
func (m *initMounts) named(err error) bool {
	msg := err.Error()
	for _, p := range []string{initPath, socketPath, m.binary, m.socket} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// directFailed remembers err, a direct terminal's own failure at its
// start, for the sessions on the daemon (directFailedNow), saying so once.
func (s *session) directFailed(err error) {
	if s.d.directFailedNow(err, time.Now()) {
		s.log.Warn("no direct terminal: the terminal goes through the daemon, for every session on this daemon for a while",
			"error", err, "retry_after", directRetryAfter)
		return
	}
	s.log.Debug("no direct terminal: the terminal goes through the daemon", "error", err)
}
