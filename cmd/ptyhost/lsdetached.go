package main

import (
	"fmt"
	"time"

	"github.com/ptyhost/ptyhost/core"
)

// detachedFor is ls's DETACHED column: how long a running session has had
// no writing client ("45s", "3m", "2h5m", "3d4h"), or "-" when one is
// attached or the session is not running.
func detachedFor(s session, now time.Time) string {
	running := s.Status == core.StatusActive || s.Status == core.StatusIdle
	if !running || s.DetachedAt.IsZero() {
		return "-"
	}
	return shortDuration(now.Sub(s.DetachedAt))
}

// idleFor is ls's IDLE column: how long ago a running session last had
// input or output (last_active_at, which the server updates at most every
// few seconds), or "-" when it is not running.
func idleFor(s session, now time.Time) string {
	running := s.Status == core.StatusActive || s.Status == core.StatusIdle
	if !running || s.LastActiveAt.IsZero() {
		return "-"
	}
	return shortDuration(now.Sub(s.LastActiveAt))
}

// shortDuration spells d in its two largest units, rounded down.
func shortDuration(d time.Duration) string {
	d = max(d, 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	default:
		days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	}
}
