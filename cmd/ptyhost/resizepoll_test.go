package main

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

// fakeSize is a window whose size the test changes; it counts the looks.
type fakeSize struct {
	mu         sync.Mutex
	cols, rows int
	ok         bool
	looks      int
}

func (f *fakeSize) set(cols, rows int, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cols, f.rows, f.ok = cols, rows, ok
}

func (f *fakeSize) size() (int, int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.looks++
	return f.cols, f.rows, f.ok
}

func (f *fakeSize) lookCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.looks
}

// waitLooks waits until the poller has looked n more times than it had.
func (f *fakeSize) waitLooks(t *testing.T, n int) {
	t.Helper()
	want := f.lookCount() + n
	deadline := time.Now().Add(5 * time.Second)
	for f.lookCount() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the poller looked %d times in 5 s, want %d", f.lookCount(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func expectResize(t *testing.T, ch <-chan os.Signal, want bool, why string) {
	t.Helper()
	select {
	case sig := <-ch:
		if !want {
			t.Fatalf("%s: got %v, want nothing", why, sig)
		}
		if _, ok := sig.(resized); !ok {
			t.Fatalf("%s: got %T, want resized", why, sig)
		}
	default:
		if want {
			t.Fatalf("%s: nothing delivered, want a resize", why)
		}
	}
}

// TestPollResizes: the Windows watcher delivers a value when the size
// changes, nothing while it stays, one for several changes not yet
// taken, nothing for a size it cannot read, and stops looking at stop.
func TestPollResizes(t *testing.T) {
	f := &fakeSize{cols: 80, rows: 24, ok: true}
	ch, stop := pollResizes(t.Context(), time.Millisecond, f.size)
	defer stop()

	f.waitLooks(t, 3)
	expectResize(t, ch, false, "the size as it started")

	f.set(100, 30, true)
	f.waitLooks(t, 2)
	expectResize(t, ch, true, "80x24 to 100x30")
	f.waitLooks(t, 2)
	expectResize(t, ch, false, "100x30 still")

	f.set(120, 30, true)
	f.waitLooks(t, 2)
	f.set(120, 40, true)
	f.waitLooks(t, 2)
	expectResize(t, ch, true, "two changes not taken")
	expectResize(t, ch, false, "two changes not taken, a second value")

	f.set(0, 0, false)
	f.waitLooks(t, 2)
	expectResize(t, ch, false, "a size that cannot be read")
	f.set(120, 40, true)
	f.waitLooks(t, 2)
	expectResize(t, ch, false, "readable again, at the size last delivered")

	stop()
	n := f.lookCount()
	f.set(1, 1, true)
	time.Sleep(20 * time.Millisecond)
	if got := f.lookCount(); got != n {
		t.Fatalf("the poller looked %d times after stop", got-n)
	}
	expectResize(t, ch, false, "after stop")
}

// TestPollResizesEndsWithContext: the attachment's context ending stops
// the poller too, and stop after it returns.
func TestPollResizesEndsWithContext(t *testing.T) {
	f := &fakeSize{cols: 80, rows: 24, ok: true}
	ctx, cancel := context.WithCancel(t.Context())
	_, stop := pollResizes(ctx, time.Millisecond, f.size)
	f.waitLooks(t, 2)
	cancel()
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not return after the context ended")
	}
}
