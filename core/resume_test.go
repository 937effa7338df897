package core

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// frames reads a's frames until want output bytes arrived, or the close,
// returning the output and the other frames (resizes aside) in order.
func frames(t *testing.T, a *Attachment, want int) (out []byte, other []Frame) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	buf := make([]byte, 4096)
	for len(out) < want {
		f, err := a.Next(ctx, buf)
		if err != nil {
			t.Fatalf("after %d of %d bytes (other frames %+v): %v", len(out), want, other, err)
		}
		switch f.Kind {
		case FrameOutput:
			out = append(out, f.Data...)
		case FrameResize:
		case FrameModes:
			f.Data = bytes.Clone(f.Data)
			other = append(other, f)
		case FrameClose:
			// Next returns it again and again: no more output comes.
			return out, append(other, f)
		default:
			other = append(other, f)
		}
	}
	return out, other
}

func (h *harness) session(t *testing.T, id string) *session {
	t.Helper()
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	s := h.m.sessions[id]
	if s == nil {
		t.Fatalf("no session %q", id)
	}
	return s
}

func (h *harness) attachFrom(t *testing.T, id string, off int64) *Attachment {
	t.Helper()
	a, err := h.m.AttachFrom(context.Background(), id, off)
	if err != nil {
		t.Fatalf("AttachFrom(%q, %d): %v", id, off, err)
	}
	t.Cleanup(a.Close)
	return a
}

func TestAttachFromExactOffsets(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = 8 << 10 })
	_, p := h.create(t, "r")
	out := []byte("plain line\r\nh\u00e9llo w\u00f6rld\r\n\x1b[?1049h\x1b[1;31mred\x1b[0m\r\n")
	p.Output(t, out)
	all := h.attach(t, "r")
	if got, _ := frames(t, all, len(out)); !bytes.Equal(got, out) {
		t.Fatalf("output %q", got)
	}
	cases := map[string]int64{
		"start":                  0,
		"mid-character":          int64(bytes.Index(out, []byte("\u00e9")) + 1),
		"inside an escape":       int64(bytes.Index(out, []byte("?1049h")) + 2),
		"inside a CSI parameter": int64(bytes.Index(out, []byte("1;31m")) + 1),
		"end":                    int64(len(out)),
	}
	more := []byte("more\r\n")
	attached := map[string]*Attachment{}
	for name, off := range cases {
		a := h.attachFrom(t, "r", off)
		if a.Hello().Offset != off {
			t.Errorf("%s: hello offset %d, want %d", name, a.Hello().Offset, off)
		}
		attached[name] = a
	}
	p.Output(t, more)
	for name, off := range cases {
		want := append(bytes.Clone(out[off:]), more...)
		got, other := frames(t, attached[name], len(want))
		if !bytes.Equal(got, want) || len(other) != 0 {
			t.Errorf("%s: got %q and frames %+v, want %q and no other frame", name, got, other, want)
		}
	}

	if _, err := h.m.AttachFrom(t.Context(), "r", -1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("negative offset: %v, want ErrInvalidArgument", err)
	}
}

func TestAttachFromLostOffsetResets(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = 8 << 10 })
	_, p := h.create(t, "r")
	var out []byte
	out = append(out, "\x1b[?1049h"...) // the alternate screen, for good
	line := []byte("0123456789012345678901234567890123456789012345678901234567890\r\n")
	for range 400 { // 25 KiB, three times the ring
		out = append(out, line...)
	}
	p.Output(t, out)
	end := int64(len(out))
	// Output returns once the pump read the bytes, not once it kept them.
	eventually(t, "the output in the ring", func() bool { return ringEnd(h, "r") == end })
	for _, off := range []int64{0, 100, end + 1, end + 1<<20} {
		a := h.attachFrom(t, "r", off)
		at := a.Hello().Offset
		if at <= end-8<<10 || at >= end || (at-8)%int64(len(line)) != 0 {
			t.Fatalf("offset %d: hello offset %d, want a line start in the ring", off, at)
		}
		got, other := frames(t, a, int(end-at))
		if len(other) != 2 || other[0].Kind != FrameReset || other[0].Offset != at ||
			other[1].Kind != FrameModes || string(other[1].Data) != "\x1b[?1049h" {
			t.Errorf("offset %d: frames %+v, want a reset to %d, then the alternate screen's modes", off, other, at)
		}
		if !bytes.Equal(got, out[at:]) {
			t.Errorf("offset %d: replay is not the output from %d", off, at)
		}
	}

	// Without an offset: the same replay, its modes first, no reset.
	a := h.attach(t, "r")
	at := a.Hello().Offset
	got, other := frames(t, a, int(end-at))
	if len(other) != 1 || other[0].Kind != FrameModes || !bytes.Equal(got, out[at:]) {
		t.Errorf("plain attach: frames %+v and %d bytes, want the modes, then the output from %d", other, len(got), at)
	}
}

// pumpWaits reports whether s's pump waits for a client.
func pumpWaits(s *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pumpWaiting
}

// flood writes n bytes of output to p in a goroutine; the channel is
// closed when the pump has taken all of it (or the PTY ended).
func flood(p interface{ WriteOutput([]byte) (int, error) }, n int) (<-chan struct{}, []byte) {
	data := bytes.Repeat([]byte("abcdefghijklmno\n"), n/16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = p.WriteOutput(data)
	}()
	return done, data
}

func TestLoneClientSlowsThePump(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = 8 << 10 })
	_, p := h.create(t, "f")
	s := h.session(t, "f")
	a := h.attach(t, "f")
	done, data := flood(p, 256<<10)
	eventually(t, "the pump to wait for the client", func() bool { return pumpWaits(s) })
	select {
	case <-done:
		t.Fatal("the program wrote everything to a client that reads nothing")
	default:
	}
	got, other := frames(t, a, len(data))
	if !bytes.Equal(got, data) || len(other) != 0 {
		t.Fatalf("lone client: %d bytes (equal: %v), frames %+v; want every byte, no reset", len(got), bytes.Equal(got, data), other)
	}
	<-done
}

func TestDetachReleasesTheWaitingPump(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = 8 << 10 })
	_, p := h.create(t, "f")
	s := h.session(t, "f")
	a := h.attach(t, "f")
	done, data := flood(p, 256<<10)
	eventually(t, "the pump to wait for the client", func() bool { return pumpWaits(s) })
	a.Close()
	select { // with nobody attached the ring drains
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the pump still waits after the last client left")
	}
	eventually(t, "the flood in the ring", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.ring.End() == int64(len(data))
	})
	b := h.attach(t, "f")
	at := b.Hello().Offset
	if got, _ := frames(t, b, len(data)-int(at)); !bytes.Equal(got, data[at:]) {
		t.Errorf("the output kept is not the flood's end")
	}
}

func TestTeardownWakesTheWaitingPump(t *testing.T) {
	for _, how := range []string{"destroy", "close"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.ScrollbackBytes = 8 << 10 })
			_, p := h.create(t, "f")
			s := h.session(t, "f")
			a := h.attach(t, "f") // never reads
			flood(p, 256<<10)
			eventually(t, "the pump to wait for the client", func() bool { return pumpWaits(s) })
			ended := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if how == "destroy" {
					ended <- h.m.DestroySession(ctx, "f")
				} else {
					// Close waits for the client, which gets the rest
					// of the output first: the pump must run.
					ended <- h.m.Close(ctx)
				}
			}()
			select {
			case <-s.pumpDone:
			case <-time.After(5 * time.Second):
				t.Fatal("the pump still waits after the teardown began")
			}
			a.Close()
			select {
			case err := <-ended:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("teardown hangs")
			}
		})
	}
}

func TestFlowLimitsKeepTheFastestClientInTheRing(t *testing.T) {
	for _, capacity := range []int{1, 1000, 8 << 10, 256 << 10} {
		s := &session{ring: newRing(capacity)}
		if hw, r := s.highWater(), s.maxRead(); hw+int64(r) > int64(capacity) || r < 1 {
			t.Errorf("capacity %d: high water %d + read %d exceed it", capacity, hw, r)
		}
	}
}

// A client reset to the end of a ring without safe points (one long escape
// string) has nothing to read at once; the reset itself must wake the
// pump, or the client and the program wait for each other for good.
func TestResetToTheEndWakesThePump(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = 8 << 10 })
	_, p := h.create(t, "f")
	s := h.session(t, "f")
	fast := h.attach(t, "f")
	slow := h.attach(t, "f")
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = p.WriteOutput(append([]byte("\x1b]"), bytes.Repeat([]byte("x"), 256<<10)...))
	}()
	// The fast client keeps up past the ring's size, so the slow one is out
	// of it, then stops.
	frames(t, fast, 16<<10)
	eventually(t, "the pump to wait for the clients", func() bool { return pumpWaits(s) })
	fast.Close() // the slow client, out of the ring, is the only one left

	buf := make([]byte, 4096)
	resets := 0
	for {
		select {
		case <-done:
			if resets == 0 {
				t.Error("the slow client was never reset")
			}
			return
		default:
		}
		// The program's last write may end while the client waits for
		// more: its end ends the wait too.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		go func() {
			select {
			case <-done:
				cancel()
			case <-ctx.Done():
			}
		}()
		f, err := slow.Next(ctx, buf)
		cancel()
		if errors.Is(err, context.Canceled) {
			continue // done: checked above
		}
		if err != nil {
			t.Fatalf("the slow client got nothing more after %d resets while the program still writes: %v", resets, err)
		}
		if f.Kind == FrameReset {
			resets++
		}
	}
}

// A client resuming with the epoch of the session it was attached to, in
// a session created again under the same id since, gets a reset and the
// replay, not the new session's bytes from its old offset; in the same
// session (restarted in place included) the epoch changes nothing.
func TestResumeIntoASessionCreatedAgain(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "x")
	a := h.attach(t, "x")
	p.Output(t, []byte("the first session's output\r\n"))
	got := collect(t, a, len("the first session's output\r\n"))
	off, epoch := a.Hello().Offset+int64(len(got)), a.Hello().Epoch
	if epoch == "" {
		t.Fatal("the hello has no epoch")
	}
	a.Close()

	// The same session: resumed exactly.
	p.Output(t, []byte("more\r\n"))
	same, err := h.m.AttachWith(t.Context(), "x", AttachOptions{Resume: true, Offset: off, Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	if out, other := frames(t, same, len("more\r\n")); string(out) != "more\r\n" || len(other) != 0 || same.Hello().Epoch != epoch {
		t.Errorf("resumed in the same session: %q after %+v, epoch %q; want exactly the bytes after the offset", out, other, same.Hello().Epoch)
	}
	same.Close()

	if err := h.m.DestroySession(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	_, p2 := h.create(t, "x")
	p2.Output(t, []byte("\x1b[?1049hTHE SECOND SESSION'S SCREEN, long enough to pass the offset\r\n"))
	eventually(t, "the second session's output to pass the offset", func() bool {
		s := h.session(t, "x")
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.ring.End() > off
	})
	b, err := h.m.AttachWith(t.Context(), "x", AttachOptions{Resume: true, Offset: off, Epoch: epoch})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Hello().Epoch == epoch {
		t.Errorf("the session created again has the first one's epoch %q", epoch)
	}
	f, err := b.Next(t.Context(), make([]byte, 4096))
	if err != nil {
		t.Fatal(err)
	}
	if f.Kind != FrameReset {
		t.Errorf("resumed with the first session's epoch into the second: first frame %v %q, want a reset", f.Kind, f.Data)
	}
}
