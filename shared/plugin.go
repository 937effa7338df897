package shared

import (
	"context"
	"sync"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// Handshake constants. A host runs a plugin with MagicCookieKey set to
// MagicCookieValue in its environment; the value is not a secret, it only
// keeps a plugin binary from being run by accident.
const (
	// ProtocolVersion is the newest plugin protocol version, the only one
	// so far. Hosts and plugins negotiate through VersionedPlugins.
	ProtocolVersion = 1
	// MagicCookieKey is the environment variable carrying the cookie.
	MagicCookieKey = "PTYHOST_PLUGIN"
	// MagicCookieValue is the cookie's value.
	MagicCookieValue = "4f1b0c9e-ptyhost-environment-plugin"
	// PluginName is the name the environment plugin is served and
	// dispensed under.
	PluginName = "environment"
)

// Handshake is the go-plugin handshake shared by the host and every plugin.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// VersionedPlugins returns the plugin sets by protocol version, for
// plugin.ClientConfig (with a nil impl) and plugin.ServeConfig. A new
// protocol version is added here as a new entry, next to the old ones.
func VersionedPlugins(impl Environment) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		1: {PluginName: &EnvironmentPlugin{Impl: impl}},
	}
}

// EnvironmentPlugin is the plugin.GRPCPlugin that serves an Environment in a
// plugin process and dispenses a GRPCClient in the host. It speaks gRPC only.
type EnvironmentPlugin struct {
	plugin.NetRPCUnsupportedPlugin

	// Impl is the environment to serve; the host leaves it nil.
	Impl Environment
	mu   sync.Mutex
	// server, if set, is served instead of a new GRPCServer for Impl;
	// Serve keeps it to close what is left open at shutdown. GRPCServer
	// sets it otherwise, for CloseAll. mu protects it.
	server *GRPCServer
}

var _ plugin.GRPCPlugin = (*EnvironmentPlugin)(nil)

// GRPCServer registers the environment service on s.
func (p *EnvironmentPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	p.mu.Lock()
	if p.server == nil {
		p.server = NewGRPCServer(p.Impl, Logger())
	}
	srv := p.server
	p.mu.Unlock()
	proto.RegisterEnvironmentServer(s, srv)
	return nil
}

// CloseAll kills and closes every session the plugin's server still has
// open (see GRPCServer.CloseAll), as a plugin process does before it exits.
// A plugin served inside a host's or a test's process (go-plugin's test
// connections, sharedtest.Serve) calls it when it stops serving: a session
// whose stream was released to its byte channel outlives the gRPC server
// until then.
func (p *EnvironmentPlugin) CloseAll(ctx context.Context) {
	p.mu.Lock()
	srv := p.server
	p.mu.Unlock()
	if srv != nil {
		srv.CloseAll(ctx)
	}
}

// GRPCClient returns a GRPCClient over c. go-plugin's ctx ends when the
// plugin process exits, which is what ends the client's sessions.
func (p *EnvironmentPlugin) GRPCClient(ctx context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewGRPCClient(ctx, c), nil
}
