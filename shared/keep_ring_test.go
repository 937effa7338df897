package shared

import (
	"bytes"
	"io"
	"testing"
)

// take drains what a's sender would send now, without waiting.
func take(t *testing.T, r *keepRing, a *attachment) []byte {
	t.Helper()
	var got []byte
	for {
		r.mu.Lock()
		pending := a.cursor < r.bytes.End()
		r.mu.Unlock()
		if !pending {
			return got
		}
		frame, ev, _, _ := r.next(a, nil)
		if ev != sendOutput {
			t.Fatalf("next = event %d, want output", ev)
		}
		if len(frame) > MaxFrameSize {
			t.Fatalf("frame of %d bytes, more than %d", len(frame), MaxFrameSize)
		}
		got = append(got, frame...)
	}
}

// Detached, the ring keeps the newest capacity bytes at their absolute
// offsets, from the first offset it was given, across growth and wraps.
func TestKeepRingOverwritesOldestWhenDetached(t *testing.T) {
	tests := []struct {
		name     string
		capacity int
		offset   int64
		writes   []int // sizes of successive writes
	}{
		{"small writes wrap", 10, 0, []int{3, 3, 3, 3, 3}},
		{"one write larger than the ring", 10, 0, []int{25}},
		{"from a later offset", 16, 1000, []int{7, 20, 1}},
		{"growth past the first buffer", 64 << 10, 0, []int{1, 5000, 9000, 60000, 3}},
		{"exactly full", 8, 5, []int{8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newKeepRing(tt.capacity, tt.offset)
			var all []byte
			for i, n := range tt.writes {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				for j := range p {
					p[j] += byte(j % 3)
				}
				all = append(all, p...)
				if !r.write(p) {
					t.Fatal("write on an open ring failed")
				}
			}
			start, end, attached, exit := r.kept()
			wantEnd := tt.offset + int64(len(all))
			wantStart := max(tt.offset, wantEnd-int64(tt.capacity))
			if start != wantStart || end != wantEnd || attached || exit != nil {
				t.Fatalf("kept = [%d, %d) attached=%v exit=%v; want [%d, %d), detached, running",
					start, end, attached, exit, wantStart, wantEnd)
			}
			if r.bytes.Size() > tt.capacity {
				t.Errorf("buffer of %d bytes, capacity %d", r.bytes.Size(), tt.capacity)
			}
			a, from := r.attach(tt.offset) // older than kept: clamped to start
			if from != wantStart {
				t.Fatalf("attach(%d) starts at %d, want %d", tt.offset, from, wantStart)
			}
			if got, want := take(t, r, a), all[wantStart-tt.offset:]; !bytes.Equal(got, want) {
				t.Errorf("sent %q, want %q", got, want)
			}
		})
	}
}

// An attach at or past the end starts at the end; one inside the kept
// bytes starts exactly there.
func TestKeepRingAttachClampsOffset(t *testing.T) {
	r := newKeepRing(8, 100)
	r.write([]byte("0123456789")) // keeps [102, 110): "23456789"
	tests := []struct {
		offset, want int64
		sent         string
	}{
		{0, 102, "23456789"},
		{105, 105, "56789"},
		{110, 110, ""},
		{500, 110, ""},
	}
	for _, tt := range tests {
		a, from := r.attach(tt.offset)
		if from != tt.want {
			t.Errorf("attach(%d) at %d, want %d", tt.offset, from, tt.want)
		}
		if got := take(t, r, a); string(got) != tt.sent {
			t.Errorf("attach(%d) sent %q, want %q", tt.offset, got, tt.sent)
		}
	}
}

// While attached, the reader never overwrites bytes the attachment has not
// taken: it waits, and resumes when the sender takes some or the
// attachment goes.
func TestKeepRingAttachedWriterWaitsForRoom(t *testing.T) {
	r := newKeepRing(8, 0)
	a, _ := r.attach(0)
	if !r.write([]byte("abcdefgh")) {
		t.Fatal("write failed")
	}
	wrote := make(chan bool, 1)
	go func() { wrote <- r.write([]byte("ijkl")) }()
	waitFull(t, r)
	frame, ev, _, _ := r.next(a, nil)
	if ev != sendOutput || string(frame) != "abcdefgh" {
		t.Fatalf("next = %q, %d; want the 8 bytes kept", frame, ev)
	}
	if !<-wrote {
		t.Fatal("write failed after room was made")
	}
	if got := take(t, r, a); string(got) != "ijkl" {
		t.Errorf("then sent %q, want ijkl", got)
	}

	// Full again; detaching lets the reader overwrite.
	r.write([]byte("mnopqrst"))
	go func() { wrote <- r.write([]byte("uv")) }()
	waitFull(t, r)
	if !r.detach(a) {
		t.Fatal("detach of the current attachment reported false")
	}
	if !<-wrote {
		t.Fatal("write failed after detach")
	}
	if start, end, _, _ := r.kept(); start != 14 || end != 22 {
		t.Errorf("kept [%d, %d), want [14, 22)", start, end)
	}

	// Closed: a waiting reader stops.
	b, _ := r.attach(14)
	go func() { wrote <- r.write([]byte("w")) }()
	waitFull(t, r)
	r.close()
	if <-wrote {
		t.Error("write on a closed ring succeeded")
	}
	if _, ev, _, _ := r.next(b, nil); ev != sendClosed {
		t.Errorf("next after close = %d, want sendClosed", ev)
	}
}

// A new attachment takes over: the old one's sender stops, and detaching
// the old one leaves the new one in place.
func TestKeepRingTakeOver(t *testing.T) {
	r := newKeepRing(64, 0)
	old, _ := r.attach(0)
	r.write([]byte("hello"))
	cur, _ := r.attach(2)
	select {
	case <-old.gone:
	default:
		t.Fatal("the old attachment is not gone")
	}
	if _, ev, _, _ := r.next(old, nil); ev != sendStop {
		t.Errorf("old attachment's next = %d, want sendStop", ev)
	}
	if r.detach(old) {
		t.Error("detach of a taken-over attachment reported true")
	}
	if got := take(t, r, cur); string(got) != "llo" {
		t.Errorf("new attachment sent %q, want llo", got)
	}
}

// After the end, the sender gets every byte, then the exit status; a read
// error other than EOF comes after the bytes instead.
func TestKeepRingEnd(t *testing.T) {
	r := newKeepRing(64, 0)
	a, _ := r.attach(0)
	r.write([]byte("bye"))
	r.readEnded(io.EOF)
	r.exitedWith(ExitStatus{Code: 3}, nil)
	if got := take(t, r, a); string(got) != "bye" {
		t.Fatalf("sent %q", got)
	}
	if _, ev, st, _ := r.next(a, nil); ev != sendExit || st.Code != 3 {
		t.Errorf("next = %d, %+v; want the exit, code 3", ev, st)
	}
	if _, _, _, exit := r.kept(); exit == nil || exit.Code != 3 {
		t.Errorf("kept exit %v, want code 3", exit)
	}

	r = newKeepRing(64, 0)
	a, _ = r.attach(0)
	r.write([]byte("x"))
	r.readEnded(errTest)
	if got := take(t, r, a); string(got) != "x" {
		t.Fatalf("sent %q", got)
	}
	if _, ev, _, err := r.next(a, nil); ev != sendFailed || err != errTest {
		t.Errorf("next = %d, %v; want the read error", ev, err)
	}
}

// waitFull waits until r's reader waits for room.
func waitFull(t *testing.T, r *keepRing) {
	t.Helper()
	eventually(t, "the reader waits for room", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.full
	})
}
