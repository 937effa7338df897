package shared

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	protobuf "google.golang.org/protobuf/proto"
)

// keptListCodec is the codec of one Sessions call: frameCodec, except
// that it counts the reply's entries on the wire before it decodes any,
// and refuses a list of more than MaxKeptSessions. gRPC turns a codec's
// error into a status of its own; the refusal is kept in refused too, so
// that the call can say it is the plugin's.
type keptListCodec struct {
	frameCodec
	refused *error
}

// keptListOption returns the call option that puts a keptListCodec on a
// call, and where its refusal will be.
func keptListOption() (grpc.CallOption, *error) {
	refused := new(error)
	return grpc.ForceCodecV2(keptListCodec{refused: refused}), refused
}

func (c keptListCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m := messageOf(v)
	if m == nil {
		return fmt.Errorf("unmarshal: %T is not a protobuf message", v)
	}
	buf := data.MaterializeToBuffer(frameBuffers)
	defer buf.Free()
	if err := countKept(buf.ReadOnlyData()); err != nil {
		*c.refused = err
		return err
	}
	return protobuf.Unmarshal(buf.ReadOnlyData(), m)
}

// keptListField is SessionsResponse's field number of its entries
// (shared/proto: repeated KeptSession sessions = 1).
const keptListField = 1

// countKept walks a SessionsResponse's top-level fields without decoding
// them and refuses one with more than MaxKeptSessions entries. Bytes it
// cannot walk are left to the decoder, which says what is wrong.
func countKept(b []byte) error {
	n := 0
	for len(b) > 0 {
		num, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return nil
		}
		b = b[k:]
		if num == keptListField {
			if n++; n > MaxKeptSessions {
				return fmt.Errorf("%w: it listed more than %d kept sessions (shared.MaxKeptSessions)", ErrPluginProtocol, MaxKeptSessions)
			}
		}
		k = protowire.ConsumeFieldValue(num, typ, b)
		if k < 0 {
			return nil
		}
		b = b[k:]
	}
	return nil
}

// checkKept refuses an entry of a kept-session list without a session
// id, with an id or type longer than MaxKeptIDLen, or listing an id that
// an earlier entry listed. seen holds the ids listed so far.
func checkKept(i int, k KeptSession, seen map[string]bool) error {
	switch {
	case k.ID == "":
		return fmt.Errorf("%w: kept session %d has no session id", ErrPluginProtocol, i)
	case len(k.ID) > MaxKeptIDLen || len(k.EnvironmentID) > MaxKeptIDLen || len(k.EnvironmentType) > MaxKeptIDLen:
		return fmt.Errorf("%w: kept session %d has an id or type longer than %d bytes", ErrPluginProtocol, i, MaxKeptIDLen)
	case seen[k.ID]:
		return fmt.Errorf("%w: kept session %q is listed twice", ErrPluginProtocol, cleanText(k.ID, MaxKeptIDLen))
	}
	seen[k.ID] = true
	return nil
}
