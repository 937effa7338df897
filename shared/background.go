package shared

import (
	"context"
	"os"
)

// BackgroundRunner is implemented by plugins that have work to run beside
// serving, such as cleaning up what an earlier plugin process left behind.
// Serve calls RunBackground in a goroutine of its own as serving starts,
// only when a host started the plugin (run by hand, the plugin does
// nothing but say it is not meant to be). ctx is cancelled when Serve
// returns, after every session is closed; Serve does not wait for
// RunBackground to return.
type BackgroundRunner interface {
	RunBackground(ctx context.Context)
}

// startBackground starts impl's background work, if it has any and a host
// started the process. The returned func cancels it.
func startBackground(impl Environment) (stop func()) {
	br, ok := impl.(BackgroundRunner)
	if !ok || os.Getenv(MagicCookieKey) != MagicCookieValue {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go br.RunBackground(ctx)
	return cancel
}
