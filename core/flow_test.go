package core

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

// Clients that keep reading all get every byte, the slower ones included:
// the session runs at the pace of the slowest (issue 13: eight clients of
// one session each lost a tenth of the output at the default scrollback
// when the pump waited for the fastest only).
func TestReadingClientsAllGetEveryByte(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = 8 << 10 })
	_, p := h.create(t, "f")
	fast := h.attach(t, "f")
	slow := h.attach(t, "f")
	done, data := flood(p, 256<<10)

	var wg sync.WaitGroup
	var slowGot []byte
	var slowOther []Frame
	wg.Go(func() {
		// Far slower than the fast client: a small read, then a pause,
		// never a pause near keepUpWindow.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		buf := make([]byte, 1024)
		for len(slowGot) < len(data) {
			f, err := slow.Next(ctx, buf)
			if err != nil {
				t.Errorf("slow client, after %d of %d bytes: %v", len(slowGot), len(data), err)
				return
			}
			if f.Kind == FrameOutput {
				slowGot = append(slowGot, f.Data...)
			} else if f.Kind != FrameResize {
				slowOther = append(slowOther, f)
			}
			time.Sleep(time.Millisecond)
		}
	})
	got, other := frames(t, fast, len(data))
	wg.Wait()
	if !bytes.Equal(got, data) || len(other) != 0 {
		t.Errorf("fast client: %d bytes (equal: %v), frames %+v; want every byte, no reset", len(got), bytes.Equal(got, data), other)
	}
	if !bytes.Equal(slowGot, data) || len(slowOther) != 0 {
		t.Errorf("slow client: %d bytes (equal: %v), frames %+v; want every byte, no reset", len(slowGot), bytes.Equal(slowGot, data), slowOther)
	}
	<-done
}

// A client that stops reading holds the session for keepUpWindow at most
// while another reads on; then it is left behind, and reset when it reads
// again.
func TestStalledClientHoldsThePumpBriefly(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = 8 << 10 })
	_, p := h.create(t, "f")
	fast := h.attach(t, "f")
	stalled := h.attach(t, "f")
	start := time.Now()
	done, data := flood(p, 256<<10)
	got, other := frames(t, fast, len(data))
	if !bytes.Equal(got, data) || len(other) != 0 {
		t.Fatalf("fast client: %d bytes (equal: %v), frames %+v", len(got), bytes.Equal(got, data), other)
	}
	<-done
	// It waited for the stalled client once, and once only: far less than
	// a keepUpWindow per ring of output (64 of them here).
	if took := time.Since(start); took < keepUpWindow || took > 10*keepUpWindow {
		t.Errorf("the flood took %v with a stalled client; want one wait of about %v", took, keepUpWindow)
	}
	if f, _ := nextFrame(t, stalled); f.Kind != FrameReset {
		t.Errorf("the stalled client's next frame is %+v, want a reset", f)
	}
}

// Input stuck behind a program that does not read holds up the other
// clients' input and resizes for inputWait at most: they are refused with
// ErrInputBlocked, and the session goes on.
func TestStuckInputHoldsOthersUpForABoundedTime(t *testing.T) {
	defer func(d time.Duration) { inputWait = d }(inputWait)
	inputWait = 100 * time.Millisecond
	h := newHarness(t, nil)
	var p *fakeenv.UnreadPTY
	h.env.SetSpawn(func(ctx context.Context, req shared.SpawnRequest) (shared.PTY, error) {
		p = fakeenv.NewUnreadPTY(req)
		h.env.Add(p.PTY)
		return p, nil
	})
	h.create(t, "x")
	stuck, other := h.attach(t, "x"), h.attach(t, "x")
	wrote := make(chan error, 1)
	go func() {
		_, err := stuck.Write([]byte("a paste the program does not read"))
		wrote <- err
	}()
	<-p.Writing()
	start := time.Now()
	if _, err := other.Write([]byte("ls\r")); !errors.Is(err, ErrInputBlocked) {
		t.Errorf("input behind stuck input: %v, want ErrInputBlocked", err)
	}
	if err := other.Resize(t.Context(), 100, 30); !errors.Is(err, ErrInputBlocked) {
		t.Errorf("resize behind stuck input: %v, want ErrInputBlocked", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("refused after %v, want about 2×inputWait", took)
	}
	p.Release()
	if err := <-wrote; err != nil {
		t.Errorf("the stuck input, once read: %v", err)
	}
	if _, err := other.Write([]byte("ls\r")); err != nil {
		t.Errorf("input once the program reads again: %v", err)
	}
}

// A client that trickles cannot hold the session below the pace it must
// catch up at to count as keeping up: highWater-lowWater per keepUpWindow.
// Here a second writer reads a PTY read's worth (4 KiB) every 400 ms while
// the program writes 4 KiB at a time; when it was enough for it to come
// within the high-water mark, it held the session, and the other client,
// to 10 KB/s.
func TestTricklingClientCannotHoldTheSession(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "f")
	s := h.session(t, "f")
	fast := h.attach(t, "f")
	viewer := h.attach(t, "f") // the trickler
	const windows = 6
	want := windows * (s.highWater() - s.lowWater())
	ctx, cancel := context.WithTimeout(context.Background(), windows*keepUpWindow)
	defer cancel()
	go func() {
		chunk := bytes.Repeat([]byte("abcdefghijklmno\n"), 256)
		for ctx.Err() == nil {
			if _, err := p.WriteOutput(chunk); err != nil {
				return
			}
		}
	}()
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 4<<10)
		for {
			if _, err := viewer.Next(ctx, buf); err != nil {
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(400 * time.Millisecond):
			}
		}
	})
	var got int64
	buf := make([]byte, 64<<10)
	for got < want {
		f, err := fast.Next(ctx, buf)
		if err != nil {
			t.Errorf("the other client got %d bytes in %v, want at least %d", got, windows*keepUpWindow, want)
			break
		}
		got += int64(len(f.Data))
	}
	cancel()
	wg.Wait()
}

// A client that keeps reading, steadily, only a little slower than the
// program writes (90 KiB/s against 100 KiB/s, far more than a quarter of
// the scrollback per keepUpWindow) must not be reset: the docs promise a
// client that keeps reading is never reset and the session runs at the
// pace of the slowest.
func TestSteadySlowerClientIsNeverReset(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = 32 << 10 })
	_, p := h.create(t, "f")
	fast := h.attach(t, "f")
	steady := h.attach(t, "f")
	const dur = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	const progRate, clientRate = 100 << 10, 90 << 10 // bytes/s
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { // the program: writes at most progRate
		chunk := bytes.Repeat([]byte("abcdefghijklmno\n"), 64) // 1 KiB
		var wrote int
		for ctx.Err() == nil {
			if float64(wrote) > progRate*time.Since(start).Seconds() {
				time.Sleep(time.Millisecond)
				continue
			}
			n, err := p.WriteOutput(chunk)
			if err != nil {
				return
			}
			wrote += n
		}
	})
	wg.Go(func() { // the fast client
		buf := make([]byte, 64<<10)
		for {
			if _, err := fast.Next(ctx, buf); err != nil {
				return
			}
		}
	})
	var resets, got int
	buf := make([]byte, 1024)
	for ctx.Err() == nil {
		if float64(got) > clientRate*time.Since(start).Seconds() {
			time.Sleep(time.Millisecond)
			continue
		}
		f, err := steady.Next(ctx, buf)
		if err != nil {
			break
		}
		switch f.Kind {
		case FrameOutput:
			got += len(f.Data)
		case FrameReset:
			resets++
			t.Logf("reset after %v, %d bytes read", time.Since(start), got)
		}
	}
	cancel()
	wg.Wait()
	t.Logf("steady client read %d bytes in %v (%.0f KiB/s)", got, dur, float64(got)/1024/dur.Seconds())
	if resets > 0 {
		t.Errorf("a client reading steadily at %d KiB/s was reset %d times", clientRate>>10, resets)
	}
}

// A viewer never holds the pump: what the read-only token allows must not
// slow the session's program, or its writers. One that reads a frame every
// 50 ms, which as a writer would hold the session to about a quarter of
// the scrollback per keepUpWindow, falls behind and is reset, while the
// writer gets every byte of the flood.
func TestTricklingViewerHoldsNothing(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "f")
	writer := h.attach(t, "f")
	viewer := h.attachWith(t, "f", AttachOptions{Mode: AttachRead})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	const total = 16 << 20
	go func() {
		chunk := bytes.Repeat([]byte("abcdefghijklmno\n"), 2048)
		for sent := 0; sent < total && ctx.Err() == nil; sent += len(chunk) {
			if _, err := p.WriteOutput(chunk); err != nil {
				return
			}
		}
	}()
	var resets atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			f, err := viewer.Next(ctx, buf)
			if err != nil {
				return
			}
			if f.Kind == FrameReset {
				resets.Add(1)
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	var got int64
	buf := make([]byte, 64<<10)
	for got < total {
		f, err := writer.Next(ctx, buf)
		if err != nil {
			t.Fatalf("the writer got %d of %d bytes: %v", got, total, err)
		}
		if f.Kind == FrameReset {
			t.Fatal("the writer, reading as fast as it can, was reset")
		}
		if f.Kind == FrameOutput {
			got += int64(len(f.Data))
		}
	}
	cancel()
	wg.Wait()
	if resets.Load() == 0 {
		t.Error("the trickling viewer was never reset: the pump waited for it")
	}
}

// A writer that stops reading holds the session for keepUpWindow at most
// while a viewer reads on: the viewer gets the whole flood. (Viewers hold
// the pump for nothing, but a reading one still keeps stalled writers
// from holding it for good.)
func TestStalledWriterHoldsReadingViewerBriefly(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ScrollbackBytes = 8 << 10 })
	_, p := h.create(t, "f")
	_ = h.attach(t, "f") // a writer that stops reading
	viewer := h.attachWith(t, "f", AttachOptions{Mode: AttachRead})
	done, data := flood(p, 256<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*keepUpWindow)
	defer cancel()
	var got int
	buf := make([]byte, 4096)
	for got < len(data) {
		f, err := viewer.Next(ctx, buf)
		if err != nil {
			t.Fatalf("a viewer reading as fast as it can got %d of %d bytes in %v (the stalled writer holds the pump): %v",
				got, len(data), 10*keepUpWindow, err)
		}
		if f.Kind == FrameOutput {
			got += len(f.Data)
		}
	}
	<-done
}
