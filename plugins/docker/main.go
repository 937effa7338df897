// The plugin's entry point: clean up after dead plugin processes, then
// serve (see doc.go).

package main

import (
	"context"
	"os"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// startupReapTimeout bounds the clean-up at start. It runs beside the
// serving, so a daemon that does not answer holds up nothing; the first
// session on it waits for the clean-up to end.
const startupReapTimeout = 10 * time.Second

func main() {
	env := New(shared.Logger().Named("docker"))
	// Only a plugin started by a host cleans up; run by hand, Serve just
	// says it is not meant to be.
	if os.Getenv(shared.MagicCookieKey) == shared.MagicCookieValue {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), startupReapTimeout)
			defer cancel()
			env.ReapOrphans(ctx, "")
		}()
	}
	shared.Serve(env)
}
