package core

import (
	"context"
	"testing"
	"time"
)

// TestRestartedFrame: an attached client reads the old process's output,
// then FrameRestarted at the offset where the new process's begins, then
// that output; a client attaching later, from the first byte, is told at
// the same offset; one attaching after it is not told.
func TestRestartedFrame(t *testing.T) {
	h := newHarness(t, nil)
	_, old := h.create(t, "s1")
	a := h.attach(t, "s1")
	old.Output(t, []byte("old"))
	if got := collect(t, a, 3); string(got) != "old" {
		t.Fatalf("output %q", got)
	}
	if _, err := h.m.RestartSession(context.Background(), "s1", RestartOptions{}); err != nil {
		t.Fatal(err)
	}
	nu := h.env.Last(t)
	nu.Output(t, []byte("new"))
	f, before := nextFrame(t, a)
	if f.Kind != FrameRestarted || f.Offset != 3 || len(before) != 0 {
		t.Fatalf("frame %+v after %q, want FrameRestarted at 3", f, before)
	}
	if got := collect(t, a, 3); string(got) != "new" {
		t.Fatalf("output after the restart %q", got)
	}

	b := h.attach(t, "s1")
	f, before = nextFrame(t, b)
	if f.Kind != FrameRestarted || f.Offset != 3 || string(before) != "old" {
		t.Fatalf("replaying client: frame %+v after %q, want FrameRestarted at 3 after \"old\"", f, before)
	}
	if got := collect(t, b, 3); string(got) != "new" {
		t.Fatalf("replay after the restart %q", got)
	}

	c, err := h.m.AttachFrom(context.Background(), "s1", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if got := collect(t, c, 2); string(got) != "ew" {
		t.Fatalf("client from offset 4: %q", got)
	}
	nu.Output(t, []byte("!"))
	if got := collect(t, c, 1); string(got) != "!" {
		t.Fatalf("client from offset 4 then: %q", got)
	}
}

// TestRestartedBeforeNewOutput: a client waiting in Next when the new
// process's output comes at once — read and committed by the pump before
// RestartSession has returned — is still told of the restart first. The
// restart's mark used to be set after the pump was let go, and a client
// that read the new output before it never got its "restarted" message.
func TestRestartedBeforeNewOutput(t *testing.T) {
	h := newHarness(t, nil)
	_, old := h.create(t, "s1")
	a := h.attach(t, "s1")
	old.Output(t, []byte("old"))
	if got := collect(t, a, 3); string(got) != "old" {
		t.Fatalf("output %q", got)
	}

	type got struct {
		f    Frame
		data string
		err  error
	}
	frames := make(chan got, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			f, err := a.Next(ctx, buf)
			select {
			case frames <- got{f, string(f.Data), err}:
			case <-ctx.Done():
				return
			}
			if err != nil || f.Kind == FrameClose {
				return
			}
		}
	}()

	// The new process's output is read and taken by the client before
	// RestartSession goes on.
	testHookRestartInstalled = func() {
		h.env.Last(t).Output(t, []byte("new"))
		eventually(t, "the client to take the new output", func() bool {
			a.s.mu.Lock()
			defer a.s.mu.Unlock()
			return a.off == 6
		})
	}
	t.Cleanup(func() { testHookRestartInstalled = func() {} })
	if _, err := h.m.RestartSession(context.Background(), "s1", RestartOptions{}); err != nil {
		t.Fatal(err)
	}

	var seen []string
	var out string
	for out != "new" {
		select {
		case g := <-frames:
			if g.err != nil {
				t.Fatalf("Next: %v after %v", g.err, seen)
			}
			switch g.f.Kind {
			case FrameRestarted:
				if g.f.Offset != 3 || out != "" {
					t.Fatalf("FrameRestarted at %d after %q, want at 3 before the new output", g.f.Offset, out)
				}
				seen = append(seen, "restarted")
			case FrameOutput:
				if len(seen) == 0 {
					t.Fatalf("output %q before FrameRestarted", g.data)
				}
				out += g.data
			case FrameResize:
			default:
				t.Fatalf("frame %+v after %v", g.f, seen)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("waiting for frames; got %v and %q", seen, out)
		}
	}
}
