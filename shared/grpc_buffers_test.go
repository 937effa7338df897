package shared

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto"

	"github.com/ptyhost/ptyhost/shared/proto"
)

// A full output frame takes a buffer of about its size from the session
// streams' pool, not gRPC's next size up, 1 MiB.
func TestFrameBufferFitsAFrame(t *testing.T) {
	for _, n := range []int{MaxFrameSize, MaxFrameSize + 16} {
		b := frameBuffers.Get(n)
		if len(*b) != n || cap(*b) > 2*MaxFrameSize {
			t.Errorf("a %d-byte message got a buffer of %d bytes (capacity %d); want about a frame", n, len(*b), cap(*b))
		}
		frameBuffers.Put(b)
	}
}

// The codec reads what gRPC's own writes and the other way round: on the
// wire it is gRPC's protobuf codec, whatever the frame's size.
func TestFrameCodecIsProto(t *testing.T) {
	std := encoding.GetCodecV2("proto")
	for _, n := range []int{0, 100, MaxFrameSize} {
		msg := &proto.SessionResponse{Frame: &proto.SessionResponse_Output{Output: bytes.Repeat([]byte("x"), n)}}
		for _, tc := range []struct {
			name     string
			enc, dec encoding.CodecV2
		}{{"ours to gRPC's", frameCodec{}, std}, {"gRPC's to ours", std, frameCodec{}}} {
			data, err := tc.enc.Marshal(msg)
			if err != nil {
				t.Fatalf("%s, %d bytes: marshal: %v", tc.name, n, err)
			}
			var got proto.SessionResponse
			if err := tc.dec.Unmarshal(data, &got); err != nil {
				t.Fatalf("%s, %d bytes: unmarshal: %v", tc.name, n, err)
			}
			data.Free()
			if !bytes.Equal(got.GetOutput(), msg.GetOutput()) {
				t.Errorf("%s, %d bytes: got %d bytes back", tc.name, n, len(got.GetOutput()))
			}
		}
	}
	if _, err := (frameCodec{}).Marshal("not a message"); err == nil {
		t.Error("marshalling a string succeeded")
	}
}
