package shared

import (
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"
)

// serverStopBound bounds the wait, at a test's end, for the server of
// testGRPCConn to have stopped.
const serverStopBound = 5 * time.Second

// testGRPCConn is plugin.TestPluginGRPCConn, whose server listens on a
// Unix socket it makes in TMPDIR (go-plugin's serverListener, with no
// socket directory) and removes only when the server stops: the test's
// cleanups must stop it (closing the client does, by go-plugin's Shutdown
// RPC), or the socket outlives the test process. Once the test's other
// cleanups have run, a server still serving fails the test and is stopped
// here, so that the run leaves no plugin<digits> socket in TMPDIR.
func testGRPCConn(t testing.TB, ps map[string]plugin.Plugin) (*plugin.GRPCClient, *plugin.GRPCServer) {
	t.Helper()
	client, server := plugin.TestPluginGRPCConn(t, false, ps)
	// Registered first: runs after the caller's cleanups, which close
	// the client. (Stopping the server while a Shutdown stops it races
	// inside go-plugin: only one that is still serving is stopped.)
	t.Cleanup(func() {
		select {
		case <-server.DoneCh:
		case <-time.After(serverStopBound):
			t.Errorf("the test's go-plugin server still served %v after its cleanups: its socket would be left in TMPDIR", serverStopBound)
			server.Stop()
		}
	})
	return client, server
}
