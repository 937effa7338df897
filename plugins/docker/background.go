package main

import (
	"context"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// startupReapTimeout bounds the clean-up at start. It runs beside the
// serving, so a daemon that does not answer holds up nothing; the first
// session on it waits for the clean-up to end.
const startupReapTimeout = 10 * time.Second

var _ shared.BackgroundRunner = (*Docker)(nil)

// RunBackground cleans up after dead plugin processes (reap.go) while the
// plugin serves. shared.Serve runs it only in a plugin a host started;
// run by hand, the plugin just says it is not meant to be.
func (e *Docker) RunBackground(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, startupReapTimeout)
	defer cancel()
	e.ReapOrphans(ctx, "")
}
