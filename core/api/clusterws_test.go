package api

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
	"testing/iotest"
)

// frame returns a WebSocket frame of opcode op with payload p, masked
// (as a client sends it) when mask is set.
func frame(op byte, p []byte, mask bool) []byte {
	b := []byte{0x80 | op}
	var m byte
	if mask {
		m = maskBit
	}
	switch {
	case len(p) < len16:
		b = append(b, m|byte(len(p)))
	case len(p) <= 0xffff:
		b = append(b, m|len16)
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	default:
		b = append(b, m|len64)
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
	}
	if mask {
		b = append(b, 1, 2, 3, 4) // the payload is left unmasked: only lengths count here
	}
	return append(b, p...)
}

// ownerStream is an owner's connection that sends r's bytes, then ends.
type ownerStream struct{ r io.Reader }

func (o ownerStream) Read(p []byte) (int, error)  { return o.r.Read(p) }
func (o ownerStream) Write(p []byte) (int, error) { return len(p), nil }
func (o ownerStream) Close() error                { return nil }

// TestNodeConnEnd: an owner's stream that ends between two frames,
// without a close frame, is followed by the close frame node_lost; one
// that ends in the middle of a frame, or after a close frame, is passed
// as it is. Frames of every length encoding, masked or not, cut at every
// byte, read a byte at a time or whole.
func TestNodeConnEnd(t *testing.T) {
	frames := [][]byte{
		frame(0x2, []byte("hello"), false),
		frame(0x1, bytes.Repeat([]byte("t"), 300), false),
		frame(0x9, nil, false),
		frame(0x2, []byte("abc"), true),
		frame(0x2, bytes.Repeat([]byte("b"), 70000), false),
	}
	var stream []byte
	boundaries := map[int]bool{0: true}
	for _, f := range frames {
		stream = append(stream, f...)
		boundaries[len(stream)] = true
	}
	closeFrame := frame(opClose, append(binary.BigEndian.AppendUint16(nil, 1000), "Session exited"...), false)
	if !bytes.Equal(nodeLostFrame, frame(opClose, append(binary.BigEndian.AppendUint16(nil, 4503), "node_lost"...), false)) {
		t.Fatalf("nodeLostFrame is % x", nodeLostFrame)
	}
	read := func(t *testing.T, sent []byte, oneByte bool) []byte {
		t.Helper()
		var r io.Reader = bytes.NewReader(sent)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		got, err := io.ReadAll(&nodeConn{rwc: ownerStream{r}, t: &tunnel{}})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	longFrom := len(stream) - len(frames[len(frames)-1])
	for _, oneByte := range []bool{false, true} {
		for cut := 0; cut <= len(stream); cut++ {
			if cut > longFrom+16 && cut < len(stream)-16 && cut%4096 != 0 {
				continue // the long frame's middle: a few cuts are enough
			}
			want := stream[:cut]
			if boundaries[cut] {
				want = append(append([]byte{}, want...), nodeLostFrame...)
			}
			if got := read(t, stream[:cut], oneByte); !bytes.Equal(got, want) {
				t.Fatalf("cut at %d (boundary %v, a byte at a time %v): got %d bytes ending % x, want %d ending % x",
					cut, boundaries[cut], oneByte, len(got), got[max(0, len(got)-16):], len(want), want[max(0, len(want)-16):])
			}
		}
		closed := append(append([]byte{}, stream...), closeFrame...)
		if got := read(t, closed, oneByte); !bytes.Equal(got, closed) {
			t.Errorf("a stream that ends with the owner's close frame: got %d bytes, want it as sent (%d)", len(got), len(closed))
		}
		afterClose := append(append([]byte{}, closeFrame...), frames[0]...)
		if got := read(t, afterClose, oneByte); !bytes.Equal(got, afterClose) {
			t.Errorf("a close frame, then a frame: got % x, want it as sent", got)
		}
	}
}
