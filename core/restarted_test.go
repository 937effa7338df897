package core

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// attachedAfterOld creates session s1, attaches a client and has it read
// the process's first output, "old".
func attachedAfterOld(t *testing.T) (*harness, *Attachment) {
	t.Helper()
	h := newHarness(t, nil)
	_, old := h.create(t, "s1")
	a := h.attach(t, "s1")
	old.Output(t, []byte("old"))
	if got := collect(t, a, 3); string(got) != "old" {
		t.Fatalf("output %q", got)
	}
	return h, a
}

// TestRestartedFrame: an attached client reads the old process's output,
// then FrameRestarted at the offset where the new process's begins, then
// that output; a client attaching later, from the first byte, is told at
// the same offset; one attaching after it is not told.
func TestRestartedFrame(t *testing.T) {
	h, a := attachedAfterOld(t)
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
// RestartSession has returned — is still told of the restart first,
// whether it reads its output from Next or has a direct writer (which the
// pump would write it with). The restart's mark used to be set after the
// pump was let go, and a client that took the new output before it never
// got its "restarted" message.
func TestRestartedBeforeNewOutput(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(map[bool]string{false: "next", true: "direct"}[direct], func(t *testing.T) {
			restartedBeforeNewOutput(t, direct)
		})
	}
}

func restartedBeforeNewOutput(t *testing.T, direct bool) {
	h, a := attachedAfterOld(t)

	// What the client receives, from Next and its direct writer, in order.
	var mu sync.Mutex
	var log []string
	record := func(e string) {
		mu.Lock()
		log = append(log, e)
		mu.Unlock()
	}
	snapshot := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(log)
	}
	if direct {
		a.Direct(func(p []byte) error { record("output " + string(p)); return nil })
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			f, err := a.Next(ctx, buf)
			switch {
			case err != nil || f.Kind == FrameClose:
				return
			case f.Kind == FrameRestarted:
				record(fmt.Sprintf("restarted at %d", f.Offset))
			case f.Kind == FrameOutput:
				record("output " + string(f.Data))
			case f.Kind != FrameResize:
				record(fmt.Sprintf("frame %+v", f))
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
	want := []string{"restarted at 3", "output new"}
	for end := time.Now().Add(5 * time.Second); len(snapshot()) < len(want) && time.Now().Before(end); {
		time.Sleep(time.Millisecond)
	}
	if got := snapshot(); !slices.Equal(got, want) {
		t.Fatalf("the client received %q, want %q", got, want)
	}
}

// Whoever reads a session on hearing session_restarted sees that restart
// counted, and the new command: the count used to go up only after the
// event was out.
func TestRestartedEventSeesCount(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "s1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	evs := h.m.Subscribe(ctx)
	checked := make(chan struct{})
	testHookRestartInstalled = func() { <-checked }
	t.Cleanup(func() { testHookRestartInstalled = func() {} })
	done := make(chan error, 1)
	go func() {
		_, err := h.m.RestartSession(context.Background(), "s1", RestartOptions{Command: []string{"sh", "-c", "again"}})
		done <- err
	}()
	func() {
		defer close(checked)
		for {
			select {
			case e := <-evs:
				if e.Type != SessionRestarted {
					continue
				}
				rec, err := h.m.GetSession(context.Background(), "s1")
				if err != nil {
					t.Fatal(err)
				}
				if rec.Restarts != 1 || !slices.Equal(rec.Command, []string{"sh", "-c", "again"}) {
					t.Errorf("on session_restarted the session reads restarts %d, command %q; want 1, the new command", rec.Restarts, rec.Command)
				}
				return
			case <-time.After(5 * time.Second):
				t.Fatal("no session_restarted")
			}
		}
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
