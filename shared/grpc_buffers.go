package shared

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// frameBuffers is the buffer pool of the gRPC messages between a host and
// a plugin, on both sides. gRPC's default pool has no size between 32 KiB
// and 1 MiB, so every full output frame (MaxFrameSize and a few bytes of
// framing) took a 1 MiB buffer, zeroed on each use: a burst of output on
// 200 sessions at once left the plugin at 570 MiB. This pool adds a size
// for a whole frame.
var frameBuffers = mem.NewTieredBufferPool(256, 4<<10, 16<<10, 32<<10, frameBufferSize, 1<<20)

// frameBufferSize holds a full frame: MaxFrameSize bytes of payload and
// the message's framing, a few bytes.
const frameBufferSize = MaxFrameSize + 1<<10

// frameCodec is gRPC's protobuf codec, with frameBuffers instead of the
// process's default pool, which the codec would otherwise marshal into and
// gather received messages in. Its name is "proto": on the wire nothing
// changes, and a peer with gRPC's own codec reads it.
type frameCodec struct{}

func (frameCodec) Name() string { return "proto" }

func (frameCodec) Marshal(v any) (mem.BufferSlice, error) {
	m := messageOf(v)
	if m == nil {
		return nil, fmt.Errorf("marshal: %T is not a protobuf message", v)
	}
	size := proto.Size(m)
	// UseCachedSize reuses the Size just computed; m is not changed
	// concurrently.
	opts := proto.MarshalOptions{UseCachedSize: true}
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := frameBuffers.Get(size)
	if _, err := opts.MarshalAppend((*buf)[:0], m); err != nil {
		frameBuffers.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, frameBuffers)}, nil
}

func (frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m := messageOf(v)
	if m == nil {
		return fmt.Errorf("unmarshal: %T is not a protobuf message", v)
	}
	buf := data.MaterializeToBuffer(frameBuffers)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// messageOf returns v as a protobuf message, adapting one of the older
// API (go-plugin's own services, a third party's); nil if it is neither.
func messageOf(v any) proto.Message {
	switch m := v.(type) {
	case proto.Message:
		return m
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(m)
	}
	return nil
}

// grpcServerOptions are the options of a plugin's gRPC server, added to
// go-plugin's own.
func grpcServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(frameCodec{}),
		experimental.BufferPool(frameBuffers), // what the transport reads into
	}
}

// GRPCDialOptions are the options a host passes to go-plugin for its
// connection to a plugin (plugin.ClientConfig.GRPCDialOptions): the
// frame-sized buffers, for its connection only, and the bounds on what the
// plugin sends: messages of at most MaxMessageSize on every call, go-plugin's
// own services' too (go-plugin's default, replaced here, is 2 GiB), and
// headers and trailers of at most maxHeaderListSize. A GRPCClient bounds
// its calls' messages itself as well.
func GRPCDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(frameCodec{}), recvLimit(MaxMessageSize)),
		experimental.WithBufferPool(frameBuffers),
		grpc.WithMaxHeaderListSize(maxHeaderListSize),
	}
}
