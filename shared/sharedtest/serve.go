package sharedtest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/ptyhost/ptyhost/shared"
)

// Serve serves impl through the plugin's real gRPC glue, inside the test
// process, and returns the environment as the host sees it: the same
// client, server, frames and error mapping as across a process boundary,
// without building a binary.
//
//	sharedtest.Run(t, sharedtest.Serve(t, myenv.New(nil)), sharedtest.Config{...})
//
// The connection is go-plugin's test connection (plugin.TestPluginGRPCConn):
// gRPC over a Unix socket in a temporary directory, without the handshake
// and without TLS, so AutoMTLS is not exercised; Launch covers that. The
// returned environment also implements shared.ConfigValidator and
// shared.HealthChecker (the plugin's Info says whether impl supports them).
// The test's cleanup closes the connection, which closes (after killing)
// every session impl still has open.
func Serve(t testing.TB, impl shared.Environment) shared.Environment {
	t.Helper()
	plugins := shared.VersionedPlugins(impl)[shared.ProtocolVersion]
	client, _ := plugin.TestPluginGRPCConn(t, false, plugins)
	// Closing the client stops the server as well (go-plugin's Shutdown
	// RPC); stopping the server here too would race inside go-plugin.
	// Then what a plugin process does before it exits: close what is
	// left.
	t.Cleanup(func() {
		_ = client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), closeAllTimeout)
		defer cancel()
		plugins[shared.PluginName].(*shared.EnvironmentPlugin).CloseAll(ctx)
	})
	return dispense(t, client)
}

// closeAllTimeout bounds the cleanup's CloseAll, as a plugin process's
// shutdown is bounded.
const closeAllTimeout = 10 * time.Second

// Launch starts the plugin executable at path as the host does — a
// separate process, go-plugin's handshake with shared.Handshake, gRPC only,
// AutoMTLS — and returns its environment. It lets a plugin author test the
// binary they ship without importing ptyhost's server:
//
//	sharedtest.Run(t, sharedtest.Launch(t, "./ptyhost-plugin-myenv"), sharedtest.Config{...})
//
// The plugin inherits the test's environment (set variables with t.Setenv
// before calling Launch); its log lines go to the test's output at warn
// level or above, or at the level PTYHOST_PLUGIN_LOG_LEVEL names (a value
// that names no level fails the test). Its socket is made in a private
// directory that the test's cleanup removes. A plugin
// that does not start or does not serve an environment fails the test. The
// test's cleanup stops the plugin, which kills and closes whatever sessions
// are still open, and waits for it to exit.
func Launch(t testing.TB, path string) shared.Environment {
	t.Helper()
	level := hclog.Warn
	if v := os.Getenv(shared.LogLevelEnv); v != "" {
		var err error
		if level, err = shared.ParseLogLevel(v); err != nil {
			t.Fatalf("%s: %v", shared.LogLevelEnv, err)
		}
	}
	// The plugin's socket goes in a private directory, as the server's
	// plugins' do, removed after the plugin: one killed (a crash, or a
	// shutdown past go-plugin's 2 s) cannot remove its own, and would
	// leave it in TMPDIR.
	sockDir, err := os.MkdirTemp("", "ptyhost-sharedtest-")
	if err != nil {
		t.Fatalf("a directory for the plugin's socket: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	// go-plugin tells a plugin where to make its socket only when it
	// runs the command through a RunnerFunc (ClientConfig.UnixSocketConfig
	// is not passed on otherwise): the variable is set here, after the
	// test's own environment, which SkipHostEnv leaves to this.
	cmd := exec.Command(path)
	cmd.Env = append(os.Environ(), plugin.EnvUnixSocketDir+"="+sockDir)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  shared.Handshake,
		VersionedPlugins: shared.VersionedPlugins(nil),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		GRPCDialOptions:  shared.GRPCDialOptions(),
		Logger: hclog.New(&hclog.LoggerOptions{
			Name:   "plugin",
			Level:  level,
			Output: t.Output(),
		}),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("start plugin %s: %v", path, err)
	}
	return dispense(t, rpc)
}

// dispense returns the environment plugin of a connected client.
func dispense(t testing.TB, rpc plugin.ClientProtocol) shared.Environment {
	t.Helper()
	raw, err := rpc.Dispense(shared.PluginName)
	if err != nil {
		t.Fatalf("dispense %q: %v", shared.PluginName, err)
	}
	env, ok := raw.(shared.Environment)
	if !ok {
		t.Fatalf("the plugin dispensed %T, not a shared.Environment", raw)
	}
	return env
}
