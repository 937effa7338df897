package core

import (
	"fmt"
	"strings"
	"time"
)

// A session's idle timeout is how long it lives on, running, with no
// writing client attached: viewers (AttachRead) neither keep a session
// alive nor, leaving, start its timeout. It comes from the session
// (CreateOptions.IdleTimeout), else its environment
// (Environment.IdleTimeout), else the server (Options.IdleTimeout, by
// default NoIdleTimeout). Sessions and environments spell it as
// ParseIdleTimeout reads it.

// ParseIdleTimeout reads an idle timeout as sessions and environments spell
// it: "never" (or "-1") keeps the session until it exits or is destroyed,
// a duration such as "90s", "5m" or "1h30m" destroys it that long after
// its last writing client left, and "0" destroys it as soon as its last
// writing client leaves. It returns NoIdleTimeout, DestroyWhenIdle or a
// positive duration; an error wraps ErrInvalidArgument.
func ParseIdleTimeout(s string) (time.Duration, error) {
	switch v := strings.TrimSpace(s); v {
	case "never", "-1":
		return NoIdleTimeout, nil
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%w: idle_timeout %q: want a duration >= 0 such as 90s, 5m or 1h30m, 0 to end the session when its last client leaves, or never", ErrInvalidArgument, s)
		}
		if d == 0 {
			return DestroyWhenIdle, nil
		}
		return d, nil
	}
}

// FormatIdleTimeout spells d (NoIdleTimeout, DestroyWhenIdle or a positive
// duration) as ParseIdleTimeout reads it: "never", "0s" or d.String().
func FormatIdleTimeout(d time.Duration) string {
	switch {
	case d == NoIdleTimeout:
		return "never"
	case d == DestroyWhenIdle, d == 0:
		return "0s"
	default:
		return d.String()
	}
}

// normalizeIdleTimeout checks s, an idle timeout from a request, and
// returns it spelled as FormatIdleTimeout does; empty stays empty (not
// set).
func normalizeIdleTimeout(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	d, err := ParseIdleTimeout(s)
	if err != nil {
		return "", err
	}
	return FormatIdleTimeout(d), nil
}

// idleTimeoutFor returns the idle timeout of a session created with
// session's value in an environment with env's (either may be empty),
// spelled as FormatIdleTimeout does: the session's wins over the
// environment's, which wins over the server's.
func (m *Manager) idleTimeoutFor(session, env string) string {
	for _, v := range []string{session, env} {
		if v != "" {
			if d, err := ParseIdleTimeout(v); err == nil {
				return FormatIdleTimeout(d)
			}
		}
	}
	return FormatIdleTimeout(m.opts.IdleTimeout)
}

// idleTimeout returns s's idle timeout (s.mu held): NoIdleTimeout,
// DestroyWhenIdle or a positive duration.
func (s *session) idleTimeout() time.Duration {
	d, err := ParseIdleTimeout(s.rec.IdleTimeout)
	if err != nil {
		// Set by CreateSession from checked values; a record without one
		// (an embedder's) keeps the session.
		return NoIdleTimeout
	}
	return d
}
