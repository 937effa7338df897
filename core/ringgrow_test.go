package core

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/ptyhost/ptyhost/internal/bytering"
)

// A ring allocates nothing until output comes, then grows by doubling as
// the output needs, up to its capacity; offsets and contents stay exact
// throughout.
func TestRingGrowsOnDemand(t *testing.T) {
	const capacity = 256 << 10
	r := newScannedRing(capacity)
	if n := r.Footprint(); n != 0 {
		t.Fatalf("a new ring holds %d bytes", n)
	}
	r.write([]byte("$ "))
	if n := r.Footprint(); n != bytering.MinSize {
		t.Fatalf("after a prompt the ring holds %d bytes, want %d", n, bytering.MinSize)
	}
	var stream []byte
	stream = append(stream, "$ "...)
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{r.Footprint()}
	for len(stream) < 3*capacity {
		chunk := make([]byte, rng.IntN(9000)+1)
		for i := range chunk {
			chunk[i] = "abcdefgh\n"[rng.IntN(9)]
		}
		r.write(chunk)
		stream = append(stream, chunk...)
		if f := r.Footprint(); sizes[len(sizes)-1] != f {
			sizes = append(sizes, f)
		}
		checkRing(t, r.ring, stream, capacity)
	}
	// Each growth doubles, as many times as the write needs: a first
	// chunk larger than MinSize skips sizes.
	for i := 1; i < len(sizes); i++ {
		if r := sizes[i] / sizes[i-1]; sizes[i]%sizes[i-1] != 0 || r < 2 || r&(r-1) != 0 {
			t.Errorf("buffer sizes %v: %d to %d is not a doubling", sizes, sizes[i-1], sizes[i])
		}
	}
	if last := sizes[len(sizes)-1]; last != capacity {
		t.Errorf("buffer sizes %v, want to end at the capacity %d", sizes, capacity)
	}
}

// A write larger than what the ring holds grows it straight to the size
// needed.
func TestRingGrowsInOneStep(t *testing.T) {
	r := newScannedRing(64 << 10)
	data := bytes.Repeat([]byte("0123456789abcdef"), 2048) // 32 KiB
	r.write(data[:10])
	r.write(data[10:])
	if f := r.Footprint(); f != 32<<10 {
		t.Errorf("footprint %d, want 32 KiB", f)
	}
	checkRing(t, r.ring, data, 64<<10)
}

// checkRing asserts r holds the last capacity bytes of stream, at their
// offsets.
func checkRing(t *testing.T, r *ring, stream []byte, capacity int) {
	t.Helper()
	end := int64(len(stream))
	if r.End() != end || r.Start() != max(0, end-int64(capacity)) {
		t.Fatalf("start=%d end=%d for %d bytes written", r.Start(), r.End(), end)
	}
	got := make([]byte, r.End()-r.Start())
	n, ok := r.Read(got, r.Start())
	if !ok || n != len(got) || !bytes.Equal(got, stream[r.Start():]) {
		t.Fatalf("ring contents differ from the stream's last bytes (read %d, ok %v)", n, ok)
	}
}

// An exited session's ring keeps only its replay: the output from the
// newest safe point at least keep bytes before the end, in a buffer that
// fits it.
func TestRingShrink(t *testing.T) {
	line := []byte("\x1b[1;32mok\x1b[0m a line of output from a build tool\r\n")
	stream := bytes.Repeat(line, (100<<10)/len(line))

	r := newScannedRing(256 << 10)
	r.write(stream)
	var want int64
	for _, sp := range r.safe {
		if sp.off <= r.End()-ExitReplayBytes {
			want = sp.off
		}
	}
	r.shrink(ExitReplayBytes, r.End())
	p := r.replayPoint()
	if p.off != want || p.off != r.Start() {
		t.Errorf("replay from %d (start %d), want the newest safe point at least %d before %d, %d", p.off, r.Start(), ExitReplayBytes, r.End(), want)
	}
	if f := r.Footprint(); f > ExitReplayBytes+minSafeGap+len(line) {
		t.Errorf("footprint %d after shrink, want at most %d and the spacing of safe points", f, ExitReplayBytes)
	}
	got := make([]byte, r.End()-p.off)
	if n, ok := r.Read(got, p.off); !ok || n != len(got) || !bytes.Equal(got, stream[p.off:]) {
		t.Errorf("replay after shrink differs from the stream's tail")
	}
	if !bytes.HasPrefix(stream[p.off:], []byte("\x1b[1;32m")) {
		t.Errorf("replay starts mid-line: %q", stream[p.off:p.off+20])
	}

	// A reader behind holds what it has yet to read.
	r = newScannedRing(256 << 10)
	r.write(stream)
	floor := int64(1000)
	r.shrink(ExitReplayBytes, floor)
	if r.Start() != floor {
		t.Errorf("start %d after shrink with a reader at %d", r.Start(), floor)
	}
	got = make([]byte, r.End()-floor)
	if n, ok := r.Read(got, floor); !ok || n != len(got) || !bytes.Equal(got, stream[floor:]) {
		t.Errorf("the reader's bytes did not survive the shrink")
	}

	// Short output is kept whole, replayed from the first byte.
	r = newScannedRing(256 << 10)
	r.write([]byte("\x1b[?1049hdone\r\n"))
	r.shrink(ExitReplayBytes, r.End())
	if p := r.replayPoint(); p.off != 0 || r.Footprint() != 14 {
		t.Errorf("short output: replay from %d, footprint %d", p.off, r.Footprint())
	}

	// Dropped: nothing to replay, offsets still right.
	r.drop()
	if p := r.replayPoint(); p.off != 14 || r.Footprint() != 0 {
		t.Errorf("dropped: replay from %d, footprint %d", p.off, r.Footprint())
	}
	if n, ok := r.Read(make([]byte, 8), 14); n != 0 || !ok {
		t.Errorf("read at the end of a dropped ring = %d, %v", n, ok)
	}
	if _, ok := r.Read(make([]byte, 8), 3); ok {
		t.Errorf("read of a dropped byte succeeded")
	}
}
