package shared

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// LogLevelEnv names the environment variable that sets a plugin's log level
// (trace, debug, info, warn, error, off). The default is info.
const LogLevelEnv = "PTYHOST_PLUGIN_LOG_LEVEL"

// Serve serves impl as an environment plugin and returns when the host stops
// the plugin, after killing and closing any session still open. It is all a
// plugin's main needs to call. Run outside a host, it prints a note and
// exits with status 1.
func Serve(impl Environment) {
	logger := Logger()
	srv := NewGRPCServer(impl, logger)
	go watchHost(logger, srv)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			ProtocolVersion: {PluginName: &EnvironmentPlugin{Impl: impl, server: srv}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     logger,
	})
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	srv.CloseAll(ctx)
}

// hostPollInterval is how often a plugin checks that its host still runs.
const hostPollInterval = 500 * time.Millisecond

// watchHost ends the plugin when the host that started it dies without
// stopping it (SIGKILL, a crash): the plugin is then re-parented, and would
// otherwise run on with nobody to serve. Its sessions are killed and closed
// first, so nothing it started outlives it.
func watchHost(logger hclog.Logger, srv *GRPCServer) {
	host := os.Getppid()
	for range time.Tick(hostPollInterval) {
		if os.Getppid() == host {
			continue
		}
		logger.Warn("the host process is gone; closing every session and exiting", "host_pid", host)
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		srv.CloseAll(ctx)
		cancel()
		os.Exit(0)
	}
}

// Logger returns the plugin process's logger: hclog, JSON lines on stderr,
// which go-plugin forwards into the host's log under the plugin's name. Its
// level comes from PTYHOST_PLUGIN_LOG_LEVEL. Every call returns the same
// logger; use Named or With for parts of a plugin.
func Logger() hclog.Logger {
	return processLogger()
}

// processLogger is created once: the process has one stderr, and go-plugin
// swaps os.Stderr for a pipe once it serves, so the real one is captured on
// first use (Serve makes that happen before serving).
var processLogger = sync.OnceValue(func() hclog.Logger {
	level := hclog.LevelFromString(os.Getenv(LogLevelEnv))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{
		Level:      level,
		Output:     os.Stderr,
		JSONFormat: true,
	})
})
