// Command silentplugin is a third-party plugin written against go-plugin
// directly, for the tests of core/pluginhost: it serves the type SILENT,
// holds the host's stream as a server's hold, and never answers Sessions.
package main

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/ptyhost/ptyhost/shared"
	"github.com/ptyhost/ptyhost/shared/proto"
)

type srv struct {
	proto.UnimplementedEnvironmentServer
}

func (srv) Info(context.Context, *proto.InfoRequest) (*proto.InfoResponse, error) {
	return &proto.InfoResponse{Name: "silent", Version: "1", Types: []string{"SILENT"}}, nil
}

func (srv) Host(s grpc.BidiStreamingServer[proto.HostRequest, proto.HostResponse]) error {
	if _, err := s.Recv(); err != nil {
		return err
	}
	if err := s.Send(&proto.HostResponse{}); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

func (srv) Sessions(context.Context, *proto.SessionsRequest) (*proto.SessionsResponse, error) {
	select {} // never answers
}

type pl struct{ plugin.NetRPCUnsupportedPlugin }

func (pl) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	proto.RegisterEnvironmentServer(s, srv{})
	return nil
}
func (pl) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, nil
}

func main() {
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  shared.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{1: {shared.PluginName: pl{}}},
		GRPCServer:       plugin.DefaultGRPCServer,
	})
}
