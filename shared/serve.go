package shared

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/ptyhost/ptyhost/internal/pluginlog"
)

// LogLevelEnv names the environment variable that sets a plugin's log level
// (trace, debug, info, warn, error, off; see ParseLogLevel). The default,
// and the level of a value that names none, is info; Logger warns of the
// latter.
const LogLevelEnv = "PTYHOST_PLUGIN_LOG_LEVEL"

// Serve serves impl as an environment plugin and returns when the host stops
// the plugin, after killing and closing any session still open. It is all a
// plugin's main needs to call. Run outside a host, it prints a note and
// exits with status 1.
//
// Before serving, it makes sure that the processes the plugin starts get
// default signal dispositions and an empty signal mask, whatever the plugin
// inherited (see resetSignals); this may re-execute the plugin once. If the
// host dies without stopping the plugin, Serve kills and closes every
// session and exits the process (see watchHost), unless the host held the
// plugin (Keeper.Hold): then the sessions stay for the next host, until the
// orphan timeout, and the plugin's log goes to a file the next host
// relays. If impl is a BackgroundRunner, its RunBackground runs
// beside the serving.
func Serve(impl Environment) {
	nameProcess()
	resetSignals()
	logger := Logger()
	srv := NewGRPCServer(impl, logger)
	go watchHost(logger, srv)
	stopBackground := startBackground(impl)
	defer stopBackground()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			ProtocolVersion: {PluginName: &EnvironmentPlugin{Impl: impl, server: srv}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return plugin.DefaultGRPCServer(append(opts, grpcServerOptions()...))
		},
		Logger: logger,
	})
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	srv.CloseAll(ctx)
}

// hostPollInterval is how often a plugin checks that its host still runs.
const hostPollInterval = 250 * time.Millisecond

// hostGoneTimeout bounds how long a plugin whose host died takes to end its
// sessions before it exits: Kill gets half of it as the grace between
// SIGHUP and SIGKILL (see PTY.Kill's ctx), Close the rest.
const hostGoneTimeout = 3 * time.Second

// watchHost ends the plugin when the host that started it dies without
// stopping it (SIGKILL, a crash): the plugin would otherwise run on with
// nobody to serve. It watches the host process itself (newHostWatch), which
// need not be its parent. Every session is killed (the
// adapter escalates to SIGKILL within the grace) and closed first, so
// nothing it started outlives it; then the process exits, even if an
// adapter's Close has not returned by hostGoneTimeout.
//
// A plugin a host holds (GRPCServer.Host) is not ended by its parent's
// death: it keeps its sessions for the next host, and its Host streams and
// orphan timer decide when it ends.
func watchHost(logger hclog.Logger, srv *GRPCServer) {
	host := hostPID()
	gone := newHostWatch(host)
	for range time.Tick(hostPollInterval) {
		if !gone() {
			continue
		}
		if srv.held() {
			// The host's end of stderr is gone: the log goes to a file the
			// next host relays.
			if err := processStderr().Redirect(os.Getenv(plugin.EnvUnixSocketDir)); err != nil {
				logger.Warn("cannot keep the log for the next host; it goes nowhere", "error", err)
			}
			logger.Info("the host process is gone; keeping the sessions for the next host", "host_pid", host)
			return
		}
		// The host's end of stderr is gone too: this line may go nowhere
		// (resetSignals made the write fail rather than kill the plugin).
		logger.Warn("the host process is gone; closing every session and exiting", "host_pid", host)
		ctx, cancel := context.WithTimeout(context.Background(), hostGoneTimeout)
		srv.CloseAll(ctx)
		cancel()
		os.Exit(0)
	}
}

// HostPIDEnv names the environment variable in which a host gives a
// plugin it starts its process id. Without it, the plugin takes its
// parent at the time it looks for its host: a host killed in the few
// milliseconds before that (while the plugin started) left it to run on
// forever, its parent already init. With it, the host need not be the
// plugin's parent (a wrapper script's shell may be).
const HostPIDEnv = "PTYHOST_PLUGIN_HOST_PID"

// hostPID returns the process id of the host that started the plugin:
// HostPIDEnv's, else the parent's.
func hostPID() int {
	if pid, err := strconv.Atoi(os.Getenv(HostPIDEnv)); err == nil && pid > 0 {
		return pid
	}
	return os.Getppid()
}

// Logger returns the plugin process's logger: hclog, JSON lines on stderr,
// which go-plugin forwards into the host's log under the plugin's name
// (once a host that held the plugin is gone, stderr is a file in the
// plugin socket directory, which the next host relays). Its
// level comes from PTYHOST_PLUGIN_LOG_LEVEL; when that names no level it
// is info, and its first line is a warning naming the value. Every call
// returns the same logger; use Named or With for parts of a plugin.
func Logger() hclog.Logger {
	return processLogger()
}

// processLogger is created once: the process has one stderr, and go-plugin
// swaps os.Stderr for a pipe once it serves, so the real one is captured on
// first use (Serve makes that happen before serving).
var processLogger = sync.OnceValue(func() hclog.Logger {
	value := os.Getenv(LogLevelEnv)
	level, err := ParseLogLevel(value)
	logger := hclog.New(&hclog.LoggerOptions{
		Level:      level,
		Output:     processStderr(),
		JSONFormat: true,
	})
	if err != nil {
		logger.Warn(LogLevelEnv+" names no log level (trace, debug, info, warn, error or off); logging at info", "value", value)
	}
	return logger
})

// processStderr is the process's stderr as its logger writes to it: the
// pipe to the host that started it, which a plugin the host held points
// at a file of its own once that host is gone (watchHost), so that the
// next host relays what it logged meanwhile (internal/pluginlog).
var processStderr = sync.OnceValue(func() *pluginlog.Stderr { return pluginlog.NewStderr(os.Stderr) })

// ParseLogLevel returns the level a value of LogLevelEnv names: trace,
// debug, info, warn, error or off, in any case; "" is info. Any other
// value is an error, with info.
func ParseLogLevel(value string) (hclog.Level, error) {
	if value == "" {
		return hclog.Info, nil
	}
	level := hclog.LevelFromString(value)
	if level == hclog.NoLevel {
		return hclog.Info, fmt.Errorf("%q is not a log level: want trace, debug, info, warn, error or off", value)
	}
	return level, nil
}
