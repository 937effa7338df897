package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ptyhost/ptyhost/core"
	"github.com/ptyhost/ptyhost/core/pluginhost"
	"github.com/ptyhost/ptyhost/shared"
)

// awaitPlugins follows the plugins' start, which pluginhost.Load left running
// in the background while the server already answers: it creates the
// default 'host' environment (and a node's own 'host-NAME', nodehost.go)
// as soon as a plugin serves HOST (or warns that none does), then waits
// until every plugin's first start has ended. It returns nil when ctx
// ends first.
func awaitPlugins(ctx context.Context, plugins *pluginhost.Plugins, m *core.Manager, log *slog.Logger, pluginDir string) error {
	for {
		err := plugins.WaitType(ctx, "HOST")
		if err == nil {
			_, err = m.EnsureEnvironment(ctx, core.Environment{ID: "host", Name: "This machine", Type: "HOST"})
			if err == nil {
				err = ensureNodeHost(ctx, m, log)
			}
			if errors.Is(err, shared.ErrUnavailable) {
				continue // the plugin died in between: wait for it again
			}
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("creating the host environment: %w", err)
			}
		} else if ctx.Err() == nil {
			log.Warn("no plugin serves HOST: the default 'host' environment is not available", "plugin_dir", pluginDir, "reason", err)
		}
		break
	}
	select {
	case <-plugins.Started():
	case <-ctx.Done():
	}
	return nil
}
