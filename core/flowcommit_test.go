package core

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
)

// A client that attaches to a session whose pump is in the middle of a
// read gets its replay from the ring's oldest end. Committing that read
// must not push the replay out before the client read it: the client
// would be reset before it got a byte (twice over, when it came back at
// an offset no longer kept). The pump holds the read's bytes while such a
// client keeps up, as it holds its next read.
func TestReplayOutlivesTheReadUnderWay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		from   int64 // the client's offset: -1 for a new client
		resets int   // the resets it is owed
	}{
		{"new client", -1, 0},
		{"back at a lost offset", 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, p, s, early := floodedSession(t)
			// The pump waits in its next read: attach now.
			var a *Attachment
			var err error
			if tc.from < 0 {
				a, err = h.m.Attach(context.Background(), "f")
			} else {
				a, err = h.m.AttachFrom(context.Background(), "f", tc.from)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(a.Close)
			hello := a.Hello()
			if hello.Offset >= int64(len(early)) || hello.Offset < int64(len(early)-flowCapacity) {
				t.Fatalf("hello offset %d; want a replay from within the ring [%d, %d)", hello.Offset, len(early)-flowCapacity, len(early))
			}
			// The read under way returns a whole maxRead: enough to push
			// out the replay's start.
			done, more := flood(p, s.maxRead())
			<-done
			all := append(bytes.Clone(early), more...)
			want := all[hello.Offset:]
			got, other := frames(t, a, len(want))
			resets := 0
			for _, f := range other {
				if f.Kind == FrameReset {
					resets++
				}
			}
			if resets != tc.resets || len(other) != tc.resets || !bytes.Equal(got, want) {
				t.Errorf("%d bytes (want %d, equal: %v), other frames %+v; want every byte from the hello's offset, after %d reset(s)",
					len(got), len(want), bytes.Equal(got, want), other, tc.resets)
			}
		})
	}
}

// A writing client that attaches during a read and reads nothing holds
// the read's bytes for keepUpWindow at most, as it would hold the next
// read: then they are appended, and the client is reset when it reads.
func TestStalledNewcomerHoldsTheReadBriefly(t *testing.T) {
	h, p, s, early := floodedSession(t)
	a := h.attach(t, "f")
	start := time.Now()
	done, more := flood(p, s.maxRead())
	<-done
	end := int64(len(early) + len(more))
	eventually(t, "the pump to hold the read for the newcomer", func() bool { return pumpWaits(s) })
	s.mu.Lock()
	held := s.ring.End() == int64(len(early))
	s.mu.Unlock()
	if !held {
		t.Fatal("the pump appended a read that drops bytes a client attached during it has yet to read")
	}
	eventually(t, "the read to be appended", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.ring.End() == end
	})
	if took := time.Since(start); took < keepUpWindow/2 || took > 4*keepUpWindow {
		t.Errorf("the read was appended after %v; want about keepUpWindow (%v)", took, keepUpWindow)
	}
	if f, _ := nextFrame(t, a); f.Kind != FrameReset {
		t.Errorf("a stalled newcomer's first frame after the drop: %+v, want a reset", f)
	}
}

// flowCapacity is the scrollback of floodedSession's session.
const flowCapacity = 8 << 10

// floodedSession creates session "f" with an 8 KiB ring and has it print
// two rings' worth with no client: the pump reads on, in reads grown to
// maxRead, the ring holds the last 8 KiB, and the pump waits in its next
// read. It returns the output printed.
func floodedSession(t *testing.T) (*harness, *fakeenv.PTY, *session, []byte) {
	t.Helper()
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = flowCapacity })
	_, p := h.create(t, "f")
	s := h.session(t, "f")
	_, early := flood(p, 2*flowCapacity)
	eventually(t, "the early output to be read", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.ring.End() == int64(len(early))
	})
	return h, p, s, early
}
