package main

import (
	"context"
	"fmt"
)

const pruneHelp = `Usage: ptyhost prune [flags]

Delete the records of every ended session (TERMINATED or ERROR), which
'ptyhost ls -a' shows until then, and print how many were deleted. Running
sessions are not touched. The server deletes them by itself too, once they
have ended longer ago than its --retention (default 7 days).
`

func runPrune(ctx context.Context, args []string, stdio stdio) error {
	var cf clientFlags
	fs := newFlagSet("prune", &cf)
	pos, help, err := parseFlags(fs, pruneHelp, args, true, stdio)
	if help || err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError{fmt.Sprintf("prune: unexpected argument %q (see 'ptyhost prune --help')", pos[0])}
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	n, err := c.pruneSessions(ctx)
	if err != nil {
		return err
	}
	noun := "records"
	if n == 1 {
		noun = "record"
	}
	_, err = fmt.Fprintf(stdio.out, "deleted %d ended session %s\n", n, noun)
	return err
}
