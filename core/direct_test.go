package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sink is one client's view of its output: what its direct writer and
// its Next loop received, in the order they did.
type sink struct {
	mu     sync.Mutex
	got    []byte
	direct int // bytes that came through the direct writer
	fail   error
}

func (k *sink) write(p []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return k.fail
	}
	k.got = append(k.got, p...)
	k.direct += len(p)
	return nil
}

func (k *sink) add(p []byte) {
	k.mu.Lock()
	k.got = append(k.got, p...)
	k.mu.Unlock()
}

func (k *sink) snapshot() (got []byte, direct int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return bytes.Clone(k.got), k.direct
}

// readInto runs a's Next loop into k until ctx ends.
func readInto(ctx context.Context, a *Attachment, k *sink) {
	buf := make([]byte, 4096)
	for {
		f, err := a.Next(ctx, buf)
		if err != nil || f.Kind == FrameClose {
			return
		}
		if f.Kind == FrameOutput {
			k.add(f.Data)
		}
	}
}

// waiting reports whether a's Next waits with nothing owed.
func (h *harness) waiting(t *testing.T, id string, a *Attachment) bool {
	s := h.session(t, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return a.waiting && !a.directBusy && len(a.wakeC) == 0
}

// A lone client that waits with everything taken gets output from its
// direct writer; with a second client attached, output goes through Next
// again; every byte arrives once, in order.
func TestDirectDelivery(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "d")
	a := h.attach(t, "d")
	var k sink
	a.Direct(k.write)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go readInto(ctx, a, &k)

	var want []byte
	for i := range 5 {
		eventually(t, "the client waits", func() bool { return h.waiting(t, "d", a) })
		key := fmt.Appendf(nil, "key %d;", i)
		want = append(want, key...)
		p.Output(t, key)
		eventually(t, "the echo", func() bool { got, _ := k.snapshot(); return len(got) == len(want) })
	}
	got, direct := k.snapshot()
	if !bytes.Equal(got, want) || direct != len(want) {
		t.Fatalf("got %q (%d bytes directly), want %q, all directly", got, direct, want)
	}

	// A second client: no direct delivery to either.
	b := h.attach(t, "d")
	eventually(t, "the client waits", func() bool { return h.waiting(t, "d", a) })
	p.Output(t, []byte("both"))
	if out := collect(t, b, len(want)+4); !bytes.Equal(out, append(bytes.Clone(want), "both"...)) {
		t.Errorf("second client got %q", out)
	}
	eventually(t, "the output through Next", func() bool { got, _ := k.snapshot(); return len(got) == len(want)+4 })
	if got, direct := k.snapshot(); string(got[len(want):]) != "both" || direct != len(want) {
		t.Errorf("first client got %q, %d bytes directly; want both through Next", got, direct)
	}
}

// Of several clients, the one whose input came last (the typist) gets the
// output directly, and the others through Next; the typist changes with
// each client's input; one that detached, or wrote while not attached, is
// no one's typist. Every client gets every byte once, in order.
func TestDirectDeliveryToTypist(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "ty")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var as [3]*Attachment
	var ks [3]sink
	for i := range as {
		as[i] = h.attach(t, "ty")
		as[i].Direct(ks[i].write)
		wg.Go(func() { readInto(ctx, as[i], &ks[i]) })
	}

	var want []byte
	step := func(out string, wantDirect [3]int) {
		t.Helper()
		for _, a := range as {
			if a != nil {
				eventually(t, "the clients wait", func() bool { return h.waiting(t, "ty", a) })
			}
		}
		want = append(want, out...)
		p.Output(t, []byte(out))
		for i, a := range as {
			if a == nil {
				continue
			}
			eventually(t, "the output", func() bool { got, _ := ks[i].snapshot(); return len(got) == len(want) })
			if got, direct := ks[i].snapshot(); !bytes.Equal(got, want) || direct != wantDirect[i] {
				t.Fatalf("after %q: client %d got %q, %d bytes directly; want %q, %d directly", out, i, got, direct, want, wantDirect[i])
			}
		}
	}

	step("none;", [3]int{}) // no one typed yet
	if _, err := as[1].Write([]byte("k")); err != nil {
		t.Fatal(err)
	}
	step("one;", [3]int{0, 4, 0})
	step("one again;", [3]int{0, 14, 0})
	if _, err := as[2].Write([]byte("k")); err != nil {
		t.Fatal(err)
	}
	step("two;", [3]int{0, 14, 4})

	// The typist leaves: the other two get output through Next, and a
	// write from the closed attachment makes it no one's typist.
	as[2].Close()
	noTypist := func() bool {
		s := h.session(t, "ty")
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.typist == nil
	}
	if !noTypist() {
		t.Fatal("a detached client is still the typist")
	}
	_, _ = as[2].Write([]byte("k"))
	if !noTypist() {
		t.Fatal("a detached client's write made it the typist")
	}
	as[2] = nil
	step("gone;", [3]int{0, 14, 0})
}

// Output racing everything a client may be owed — resizes, notices,
// a slow direct writer — still reaches it once, in order.
func TestDirectDeliveryKeepsOrder(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "o")
	a := h.attach(t, "o")
	var k sink
	a.Direct(func(b []byte) error {
		if len(b)%3 == 0 {
			time.Sleep(50 * time.Microsecond) // a slow write now and then
		}
		return k.write(b)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go readInto(ctx, a, &k)

	go func() { // the fake PTY's resizes, drained
		for {
			select {
			case <-p.Resizes():
			case <-ctx.Done():
				return
			}
		}
	}()
	var want []byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 300 {
			if i%7 == 0 {
				a.Reject("noise")
			}
			if i%11 == 0 {
				_ = a.Resize(context.Background(), 80+i%5, 24)
			}
		}
	}()
	for i := range 300 {
		chunk := fmt.Appendf(nil, "<%d>", i)
		want = append(want, chunk...)
		p.Output(t, chunk)
	}
	<-done
	eventually(t, "every byte", func() bool { got, _ := k.snapshot(); return len(got) >= len(want) })
	if got, _ := k.snapshot(); !bytes.Equal(got, want) {
		t.Fatalf("client got %q,\nwant %q", got, want)
	}
}

// A direct writer that fails loses the client those bytes (its
// connection ends); the session and Next go on.
func TestDirectDeliveryFailure(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "f")
	a := h.attach(t, "f")
	k := sink{fail: errors.New("connection reset")}
	a.Direct(k.write)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go readInto(ctx, a, &k)
	eventually(t, "the client waits", func() bool { return h.waiting(t, "f", a) })
	p.Output(t, []byte("lost"))
	eventually(t, "the direct writer given up", func() bool {
		s := h.session(t, "f")
		s.mu.Lock()
		defer s.mu.Unlock()
		return a.direct == nil && !a.directBusy
	})
	p.Output(t, []byte("next"))
	eventually(t, "output through Next", func() bool { got, _ := k.snapshot(); return string(got) == "next" })
	if h.session(t, "f").snapshot().Status != StatusActive {
		t.Error("the session did not go on")
	}
}

// A direct writer that would block hands the bytes back: Next returns
// them, and later output may go directly again.
func TestDirectDeliveryWouldBlock(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "w")
	a := h.attach(t, "w")
	var k sink
	var refused atomic.Int32
	a.Direct(func(b []byte) error {
		if refused.Add(1) == 1 {
			return ErrWouldBlock
		}
		return k.write(b)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go readInto(ctx, a, &k)
	eventually(t, "the client waits", func() bool { return h.waiting(t, "w", a) })
	p.Output(t, []byte("back"))
	eventually(t, "the output through Next", func() bool { got, _ := k.snapshot(); return string(got) == "back" })
	eventually(t, "the client waits", func() bool { return h.waiting(t, "w", a) })
	p.Output(t, []byte("direct"))
	eventually(t, "the next output", func() bool { got, _ := k.snapshot(); return string(got) == "backdirect" })
	if _, direct := k.snapshot(); direct != len("direct") {
		t.Errorf("%d bytes went directly, want the second output's %d", direct, len("direct"))
	}
}

// The typist's echo reaches the session's other clients (the watchers)
// when watcherDelay has passed, not with the echo: until then they are
// not woken, and output that goes through Next wakes them at once, with
// everything they missed, in order.
func TestDirectDeliveryWatchersLater(t *testing.T) {
	defer func(d time.Duration) { watcherDelay = d }(watcherDelay)
	watcherDelay = time.Hour
	h := newHarness(t, nil)
	_, p := h.create(t, "wl")
	ctx, cancel := context.WithCancel(context.Background())
	typing, stopTyping := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var as [3]*Attachment
	var ks [3]sink
	for i := range as {
		as[i] = h.attach(t, "wl")
		as[i].Direct(ks[i].write)
		rctx := ctx
		if i == 0 {
			rctx = typing
		}
		wg.Go(func() { readInto(rctx, as[i], &ks[i]) })
	}
	// The watchers wait, with no wake-up of the attaches (a size change)
	// still on its way to them, which would let them read the echo.
	for i := 1; i < len(as); i++ {
		eventually(t, "the watchers wait", func() bool { return h.waiting(t, "wl", as[i]) })
	}
	if _, err := as[0].Write([]byte("k")); err != nil {
		t.Fatal(err)
	}
	var want []byte
	for _, echo := range []string{"k", "e", "y"} {
		eventually(t, "the typist waits", func() bool { return h.waiting(t, "wl", as[0]) })
		want = append(want, echo...)
		p.Output(t, []byte(echo))
		eventually(t, "the echo", func() bool { got, _ := ks[0].snapshot(); return len(got) == len(want) })
	}
	if got, direct := ks[0].snapshot(); string(got) != "key" || direct != 3 {
		t.Fatalf("the typist got %q, %d bytes directly; want \"key\", all directly", got, direct)
	}
	time.Sleep(50 * time.Millisecond) // time for a wrongly woken watcher to read
	for i := 1; i < len(as); i++ {
		if got, _ := ks[i].snapshot(); len(got) != 0 {
			t.Fatalf("watcher %d got %q before watcherDelay", i, got)
		}
	}
	s := h.session(t, "wl")
	s.mu.Lock()
	due := s.watchersDue
	s.mu.Unlock()
	if !due {
		t.Fatal("no wake-up of the watchers is due")
	}

	// The typist stops reading: output goes through Next, to everyone.
	stopTyping()
	eventually(t, "the typist stops waiting", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return !as[0].waiting
	})
	p.Output(t, []byte(";next"))
	want = append(want, ";next"...)
	for i := 1; i < len(as); i++ {
		eventually(t, "every byte", func() bool { got, _ := ks[i].snapshot(); return len(got) >= len(want) })
		if got, _ := ks[i].snapshot(); !bytes.Equal(got, want) {
			t.Fatalf("watcher %d got %q, want %q", i, got, want)
		}
	}
}

// With the default watcherDelay, the watchers get the typist's echoes
// soon after, without any other output to wake them.
func TestDirectDeliveryWatchersWoken(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "ww")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var as [2]*Attachment
	var ks [2]sink
	for i := range as {
		as[i] = h.attach(t, "ww")
		as[i].Direct(ks[i].write)
		wg.Go(func() { readInto(ctx, as[i], &ks[i]) })
	}
	if _, err := as[0].Write([]byte("k")); err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := range 20 {
		eventually(t, "the typist waits", func() bool { return h.waiting(t, "ww", as[0]) })
		key := fmt.Appendf(nil, "%d;", i)
		want = append(want, key...)
		p.Output(t, key)
		eventually(t, "the echo", func() bool { got, _ := ks[0].snapshot(); return len(got) == len(want) })
	}
	eventually(t, "the watcher's output", func() bool { got, _ := ks[1].snapshot(); return len(got) == len(want) })
	if got, direct := ks[1].snapshot(); !bytes.Equal(got, want) || direct != 0 {
		t.Fatalf("the watcher got %q, %d bytes directly; want %q, none directly", got, direct, want)
	}
	if _, direct := ks[0].snapshot(); direct != len(want) {
		t.Fatalf("the typist got %d bytes directly, want all %d", direct, len(want))
	}
}

// A keystroke and its echo allocate nothing in the session: its input
// written, its output taken in (each once per keystroke). What a keystroke
// allocated was collected every few thousand keystrokes, stalling an echo.
func TestKeystrokeNoAllocations(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "na")
	s := h.session(t, "na")
	key := []byte("k")
	allocs := testing.AllocsPerRun(200, func() {
		if err := s.inputTo(io.Discard, key); err != nil {
			t.Error(err)
		}
		s.output(context.Background(), key)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per keystroke, want none", allocs)
	}
}

// While direct writes come one on another, faster than busyGap, the
// watchers get the output once per busyWatcherDelay; slower, as a human
// types, within watcherDelay.
func TestDirectDeliveryWatchersBusy(t *testing.T) {
	defer func(d, g, b time.Duration) { watcherDelay, busyGap, busyWatcherDelay = d, g, b }(watcherDelay, busyGap, busyWatcherDelay)
	watcherDelay, busyWatcherDelay = time.Millisecond, time.Hour
	h := newHarness(t, nil)
	for _, tc := range []struct {
		id      string
		gap     time.Duration // busyGap
		delayed bool          // the second echo waits busyWatcherDelay
	}{
		{"machine", time.Hour, true}, // every write after the first is busy
		{"human", 0, false},          // none is
	} {
		busyGap = tc.gap
		_, p := h.create(t, tc.id)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var as [2]*Attachment
		var ks [2]sink
		for i := range as {
			as[i] = h.attach(t, tc.id)
			as[i].Direct(ks[i].write)
			wg.Go(func() { readInto(ctx, as[i], &ks[i]) })
		}
		eventually(t, "the watcher waits", func() bool { return h.waiting(t, tc.id, as[1]) })
		if _, err := as[0].Write([]byte("k")); err != nil {
			t.Fatal(err)
		}
		echo := func(out string, want string) {
			t.Helper()
			eventually(t, "the typist waits", func() bool { return h.waiting(t, tc.id, as[0]) })
			p.Output(t, []byte(out))
			eventually(t, "the echo", func() bool { got, _ := ks[0].snapshot(); return string(got) == want })
		}
		// The session's first direct write: the watcher within
		// watcherDelay.
		echo("a", "a")
		eventually(t, "the watcher's first echo", func() bool { got, _ := ks[1].snapshot(); return string(got) == "a" })
		echo("b", "ab")
		if tc.delayed {
			time.Sleep(50 * time.Millisecond) // time for a wrongly woken watcher to read
			if got, _ := ks[1].snapshot(); string(got) != "a" {
				t.Fatalf("%s: the watcher got %q within watcherDelay, want only the first echo until busyWatcherDelay", tc.id, got)
			}
		} else {
			eventually(t, "the watcher's second echo", func() bool { got, _ := ks[1].snapshot(); return string(got) == "ab" })
		}
		cancel()
		wg.Wait()
	}
}
