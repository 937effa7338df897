package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

const stopHelp = `Usage: ptyhost stop [flags]

Ask the server to stop, as SIGTERM does, and wait until it no longer
answers (at most --wait); it may take up to its --shutdown-timeout more to
exit. By default the sessions keep running: their plugin processes keep
them, and the next server started on the same data directory and database
takes them up again, while attached clients reconnect by themselves. A
session whose server does not come back within the orphan timeout (serve
--orphan-timeout, default 10m) is hung up.

With --hang-up every session is hung up (SIGHUP, then SIGKILL; containers
removed) before the server exits, as 'serve --hang-up-on-stop' does for
every stop. A systemd unit may use it as ExecStop.

Exit status: 0 once the server no longer answers; 1 if it could not be asked,
still answers after --wait, or the line saying it stopped could not be
written.
`

// stopRequest is the body of POST /api/v1/server/stop, and its answer.
type stopRequest struct {
	HangUp bool `json:"hang_up"`
}

// stopPoll is how often stop asks whether the server still answers.
const stopPoll = 100 * time.Millisecond

func runStop(ctx context.Context, args []string, stdio stdio) error {
	var cf clientFlags
	fs := newFlagSet("stop", &cf)
	hangUp := falseFlag(fs, "hang-up", "hang every session up, instead of leaving them running for the next server")
	wait := waitFlag(fs, "wait", 30*time.Second, "how long to wait for the server to stop (`DURATION`)")
	pos, help, err := parseFlags(fs, stopHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("stop takes no arguments, got %q (see 'ptyhost stop --help')", pos)}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	var answer stopRequest
	if err := c.do(ctx, http.MethodPost, "/api/v1/server/stop", stopRequest{HangUp: *hangUp}, &answer); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if err := c.waitGone(ctx, *wait); err != nil {
		return err
	}
	msg := "ptyhost: the server has stopped serving; its sessions keep running for the next server on the same data directory and database (until the orphan timeout)"
	if answer.HangUp {
		msg = "ptyhost: the server has stopped serving; it hangs every session up as it exits"
	}
	_, err = fmt.Fprintln(stdio.out, msg)
	return err
}

// waitGone waits until the server no longer answers, at most within.
func (c *client) waitGone(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(stopPoll)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := c.do(pctx, http.MethodGet, "/healthz", nil, nil)
		cancel()
		var ae *apiError
		if err != nil && !errors.As(err, &ae) && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			return nil // it no longer accepts connections
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server at %s still answers %v after it was asked to stop", c.base.Redacted(), within)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
