package bytering

import (
	"bytes"
	"testing"
)

// Whatever the writes' sizes, a ring keeps exactly the last capacity bytes
// of the stream, at their absolute offsets from the first one, and grows
// its buffer only as they need.
func TestRingKeepsTheLastBytes(t *testing.T) {
	const capacity, first = 10 << 10, 1000
	var stream []byte
	for i := range 40 << 10 {
		stream = append(stream, byte('a'+i%26))
	}
	for _, chunk := range []int{1, 7, 4096, 9999, 40 << 10} {
		r := New(capacity, first)
		if r.Footprint() != 0 || r.Start() != first || r.End() != first {
			t.Fatalf("new ring: footprint %d, [%d,%d)", r.Footprint(), r.Start(), r.End())
		}
		for off := 0; off < len(stream); off += chunk {
			p := stream[off:min(off+chunk, len(stream))]
			start := r.Start()
			evicted := r.Write(p)
			end := int64(first + off + len(p))
			if evicted != (r.Start() != start) {
				t.Fatalf("chunk %d: Write at %d reported evicted=%v, start %d to %d", chunk, off, evicted, start, r.Start())
			}
			if r.End() != end || r.Start() != max(first, end-capacity) {
				t.Fatalf("chunk %d: [%d,%d) after writing up to %d", chunk, r.Start(), r.End(), end)
			}
			if r.Size() > capacity || r.Size() < int(r.End()-r.Start()) {
				t.Fatalf("chunk %d: buffer of %d bytes holds %d", chunk, r.Size(), r.End()-r.Start())
			}
		}
		got := make([]byte, capacity+5)
		n, ok := r.Read(got, r.Start())
		if !ok || !bytes.Equal(got[:n], stream[len(stream)-capacity:]) {
			t.Errorf("chunk %d: read %d bytes (ok %v) that are not the stream's last %d", chunk, n, ok, capacity)
		}
		if _, ok := r.Read(got, r.Start()-1); ok {
			t.Errorf("chunk %d: a read before Start succeeded", chunk)
		}
		if !r.Holds(r.End()) || r.Holds(r.End()+1) || r.Holds(r.Start()-1) {
			t.Errorf("chunk %d: Holds is wrong at the edges of [%d,%d)", chunk, r.Start(), r.End())
		}
	}
}

// Forget drops the oldest bytes; Resize then fits the buffer to the rest,
// and to nothing once everything is forgotten.
func TestRingForgetAndResize(t *testing.T) {
	r := New(64, 0)
	r.Write([]byte("0123456789abcdef"))
	r.Forget(10)
	r.Resize(int(r.End() - r.Start()))
	got := make([]byte, 16)
	if n, ok := r.Read(got, 10); !ok || string(got[:n]) != "abcdef" || r.Footprint() != 6 {
		t.Errorf("after Forget(10) and Resize: %q, ok %v, footprint %d", got[:n], ok, r.Footprint())
	}
	r.Forget(r.End() + 100) // clamped to End
	r.Resize(0)
	if r.Start() != 16 || r.Footprint() != 0 {
		t.Errorf("after forgetting all: start %d, footprint %d", r.Start(), r.Footprint())
	}
	r.Write([]byte("xyz"))
	if n, _ := r.Read(got, 16); string(got[:n]) != "xyz" {
		t.Errorf("a write after forgetting all reads %q", got[:n])
	}
}
