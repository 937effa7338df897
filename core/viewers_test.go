package core

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
	"github.com/ptyhost/ptyhost/internal/fakeenv"
	"github.com/ptyhost/ptyhost/shared"
)

func (h *harness) attachWith(t *testing.T, id string, opts AttachOptions) *Attachment {
	t.Helper()
	a, err := h.m.AttachWith(context.Background(), id, opts)
	if err != nil {
		t.Fatalf("AttachWith(%q, %+v): %v", id, opts, err)
	}
	t.Cleanup(a.Close)
	return a
}

// size returns session id's terminal size as recorded.
func (h *harness) size(t *testing.T, id string) shared.Size {
	t.Helper()
	rec := h.session(t, id).snapshot()
	return shared.Size{Cols: uint16(rec.Cols), Rows: uint16(rec.Rows)}
}

// lastResize drains p's resizes and returns the last, failing when the
// plugin was asked for none.
func lastResize(t *testing.T, p *fakeenv.PTY) shared.Size {
	t.Helper()
	var last shared.Size
	select {
	case last = <-p.Resizes():
	case <-time.After(5 * time.Second):
		t.Fatal("the plugin was asked for no resize")
	}
	for {
		select {
		case last = <-p.Resizes():
		default:
			return last
		}
	}
}

func TestReadOnlyAttachment(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "ro")
	a := h.attachWith(t, "ro", AttachOptions{Mode: AttachRead})
	if !a.ReadOnly() {
		t.Fatal("ReadOnly() = false for AttachRead")
	}
	if _, err := a.Write([]byte("rm -rf /\n")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Write: %v, want ErrReadOnly", err)
	}
	if err := a.Resize(context.Background(), 100, 30); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Resize: %v, want ErrReadOnly", err)
	}
	select {
	case in := <-p.Input():
		t.Fatalf("the session got input %q from a read-only client", in)
	case s := <-p.Resizes():
		t.Fatalf("the session was resized to %v by a read-only client", s)
	default:
	}
	p.Output(t, []byte("hello"))
	if got := collect(t, a, 5); string(got) != "hello" {
		t.Fatalf("output %q", got)
	}
	p.End(shared.ExitStatus{Code: 3})
	f, _ := nextFrame(t, a)
	if f.Kind != FrameExit || f.Exit.Code != 3 {
		t.Fatalf("frame %+v, want the exit with code 3", f)
	}
}

func TestAttachWithErrors(t *testing.T) {
	h := newHarness(t, nil)
	h.create(t, "e")
	for name, opts := range map[string]AttachOptions{
		"negative offset": {Resume: true, Offset: -1},
		"unknown mode":    {Mode: 7},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := h.m.AttachWith(context.Background(), "e", opts); !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("AttachWith(%+v): %v, want ErrInvalidArgument", opts, err)
			}
		})
	}
	if _, err := h.m.AttachWith(context.Background(), "nope", AttachOptions{}); !errors.Is(err, ErrSessionNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
}

func TestMaxClients(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxClients = 2 })
	h.create(t, "m")
	a := h.attach(t, "m")
	h.attach(t, "m")
	if err := h.m.Attachable("m"); !errors.Is(err, ErrTooManyClients) {
		t.Fatalf("Attachable with 2 of 2 writers: %v, want ErrTooManyClients", err)
	}
	if err := h.m.AttachableWith("m", AttachRead); !errors.Is(err, ErrTooManyClients) {
		t.Fatalf("AttachableWith(AttachRead) with 2 of 2 writers: %v, want ErrTooManyClients", err)
	}
	if _, err := h.m.Attach(context.Background(), "m"); !errors.Is(err, ErrTooManyClients) {
		t.Fatalf("third Attach: %v, want ErrTooManyClients", err)
	}
	if _, err := h.m.AttachWith(context.Background(), "m", AttachOptions{Mode: AttachRead}); !errors.Is(err, ErrTooManyClients) {
		t.Fatalf("a viewer past the limit: %v, want ErrTooManyClients", err)
	}
	if n := h.session(t, "m").snapshot().ActiveConnections; n != 2 {
		t.Fatalf("ActiveConnections = %d after refused attaches, want 2", n)
	}
	a.Close()
	if err := h.m.Attachable("m"); err != nil {
		t.Fatalf("Attachable after one left: %v", err)
	}
	h.attach(t, "m")
}

// The refusal counts the clients in English: "has 1 client attached" for
// a session of one client, as --max-clients 1 makes every second attach.
func TestMaxClientsMessage(t *testing.T) {
	for n, want := range map[int]string{
		1: `session "m" has 1 client attached, the most it allows (max clients 1)`,
		2: `session "m" has 2 clients attached, the most it allows (max clients 2)`,
	} {
		err := tooManyClients("m", n, n)
		if !errors.Is(err, ErrTooManyClients) || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("tooManyClients(m, %d, %d) = %v, want ErrTooManyClients ending %q", n, n, err, want)
		}
	}
}

// expectOpen fails if a has anything but output for the client (it has not
// been closed).
func expectOpen(t *testing.T, a *Attachment, who string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	buf := make([]byte, 4096)
	for {
		f, err := a.Next(ctx, buf)
		if err != nil {
			return // nothing more: still attached
		}
		if f.Kind == FrameClose {
			t.Fatalf("%s was closed (%d %q)", who, f.CloseCode, f.CloseReason)
		}
	}
}

// Holders of the read-only token cannot keep the session's writers out
// by filling its client limit: a writer that finds it full takes the
// place of the viewer that came last, which is closed with 1013 and
// says why. Viewers still cannot push anyone out, nor can a writer when
// every place is a writer's.
func TestWriterDisplacesNewestViewer(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxClients = 3 })
	h.create(t, "m")
	first := h.attach(t, "m")
	older := h.attachWith(t, "m", AttachOptions{Mode: AttachRead})
	newer := h.attachWith(t, "m", AttachOptions{Mode: AttachRead})
	tryViewer := func() error {
		v, err := h.m.AttachWith(context.Background(), "m", AttachOptions{Mode: AttachRead})
		if err == nil {
			t.Cleanup(v.Close)
		}
		return err
	}
	if err := tryViewer(); !errors.Is(err, ErrTooManyClients) {
		t.Fatalf("a fourth client, a viewer: %v, want ErrTooManyClients", err)
	}
	if err := h.m.Attachable("m"); err != nil {
		t.Fatalf("Attachable for a writer with a viewer to displace: %v", err)
	}

	h.attach(t, "m")
	f, _ := nextFrame(t, newer)
	if f.Kind != FrameClose || f.CloseCode != wsproto.CloseTryAgainLater || f.CloseReason != wsproto.CloseReasonDisplaced {
		t.Fatalf("the newest viewer got %+v, want a close 1013 %q", f, wsproto.CloseReasonDisplaced)
	}
	expectOpen(t, older, "the older viewer")
	if err := tryViewer(); !errors.Is(err, ErrTooManyClients) {
		t.Fatalf("a viewer after the displacement: %v, want ErrTooManyClients", err)
	}

	// The displaced viewer holds no place while it is on its way out: with
	// the first writer gone, a viewer gets in before it has left.
	first.Close()
	if err := tryViewer(); err != nil {
		t.Fatalf("a viewer with a place free beside a displaced one: %v", err)
	}
	newer.Close()
	if n := h.session(t, "m").snapshot().ActiveConnections; n != 3 {
		t.Fatalf("ActiveConnections = %d, want 3 (a writer, two viewers)", n)
	}

	// Writers take the viewers' places, the newest's first; then every
	// place is a writer's, and a fourth writer is refused.
	h.attach(t, "m")
	expectOpen(t, older, "the older viewer, with a newer one to displace")
	h.attach(t, "m")
	if f, _ := nextFrame(t, older); f.Kind != FrameClose || f.CloseReason != wsproto.CloseReasonDisplaced {
		t.Fatalf("the older viewer got %+v, want the displacement's close", f)
	}
	older.Close()
	if _, err := h.m.Attach(context.Background(), "m"); !errors.Is(err, ErrTooManyClients) {
		t.Fatalf("a fourth writer with three: %v, want ErrTooManyClients", err)
	}
}

func TestOptionsValidateClients(t *testing.T) {
	base := Options{Store: newMemStore(), Plugins: fakePlugins{}}
	for name, tt := range map[string]struct {
		mod  func(*Options)
		fail bool
	}{
		"defaults":             {mod: func(*Options) {}},
		"smallest":             {mod: func(o *Options) { o.SizePolicy = SizeSmallest }},
		"latest":               {mod: func(o *Options) { o.SizePolicy = SizeLatest }},
		"unknown size policy":  {mod: func(o *Options) { o.SizePolicy = "largest" }, fail: true},
		"negative max clients": {mod: func(o *Options) { o.MaxClients = -1 }, fail: true},
	} {
		t.Run(name, func(t *testing.T) {
			o := base
			tt.mod(&o)
			if err := o.Validate(); (err != nil) != tt.fail {
				t.Fatalf("Validate: %v, want failure %v", err, tt.fail)
			}
		})
	}
}

func TestParseSizePolicy(t *testing.T) {
	for in, want := range map[string]SizePolicy{"": SizeLatest, "latest": SizeLatest, "smallest": SizeSmallest} {
		if got, err := ParseSizePolicy(in); err != nil || got != want {
			t.Errorf("ParseSizePolicy(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"Smallest", "largest", " latest"} {
		if _, err := ParseSizePolicy(in); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseSizePolicy(%q): %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestSizePolicy(t *testing.T) {
	type ask struct {
		client     int // index of the client that asks
		cols, rows int
	}
	for _, tt := range []struct {
		name   string
		policy SizePolicy
		asks   []ask
		want   shared.Size // after the asks
		leaves int         // the client that leaves then
		after  shared.Size // the size after it left
	}{
		{
			name: "latest: the leaver's size gives way", policy: SizeLatest,
			asks: []ask{{0, 100, 30}, {1, 120, 40}}, want: shared.Size{Cols: 120, Rows: 40},
			leaves: 1, after: shared.Size{Cols: 100, Rows: 30},
		},
		{
			name: "latest is the default", policy: "",
			asks: []ask{{1, 120, 40}, {0, 100, 30}}, want: shared.Size{Cols: 100, Rows: 30},
			leaves: 0, after: shared.Size{Cols: 120, Rows: 40},
		},
		{
			name: "smallest takes each dimension's least", policy: SizeSmallest,
			asks: []ask{{0, 100, 30}, {1, 80, 50}}, want: shared.Size{Cols: 80, Rows: 30},
			leaves: 0, after: shared.Size{Cols: 80, Rows: 50},
		},
		{
			name: "smallest: a newer larger ask does not grow it", policy: SizeSmallest,
			asks: []ask{{0, 90, 20}, {1, 200, 60}, {0, 100, 30}}, want: shared.Size{Cols: 100, Rows: 30},
			leaves: 0, after: shared.Size{Cols: 200, Rows: 60},
		},
		{
			name: "a client that never asked leaves nothing changed", policy: SizeSmallest,
			asks: []ask{{0, 100, 30}}, want: shared.Size{Cols: 100, Rows: 30},
			leaves: 1, after: shared.Size{Cols: 100, Rows: 30},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.SizePolicy = tt.policy })
			_, p := h.create(t, "s")
			clients := []*Attachment{h.attach(t, "s"), h.attach(t, "s"), h.attachWith(t, "s", AttachOptions{Mode: AttachRead})}
			for _, k := range tt.asks {
				if err := clients[k.client].Resize(context.Background(), k.cols, k.rows); err != nil {
					t.Fatalf("Resize %+v: %v", k, err)
				}
			}
			if got := h.size(t, "s"); got != tt.want {
				t.Fatalf("size %v after the asks, want %v", got, tt.want)
			}
			if got := lastResize(t, p); got != tt.want {
				t.Fatalf("the plugin's last resize %v, want %v", got, tt.want)
			}
			clients[2].Close() // a viewer leaving changes nothing
			clients[tt.leaves].Close()
			if got := h.size(t, "s"); got != tt.after {
				t.Fatalf("size %v after client %d left, want %v", got, tt.leaves, tt.after)
			}
			if tt.after != tt.want {
				if got := lastResize(t, p); got != tt.after {
					t.Fatalf("the plugin's last resize %v, want %v", got, tt.after)
				}
			}
			select {
			case s := <-p.Resizes():
				t.Fatalf("unexpected resize to %v", s)
			default:
			}
			// The one left is told the size.
			other := clients[1-tt.leaves]
			var told shared.Size
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			buf := make([]byte, 64)
			for told != tt.after {
				f, err := other.Next(ctx, buf)
				if err != nil {
					t.Fatalf("the remaining client was told %v, not %v: %v", told, tt.after, err)
				}
				if f.Kind == FrameResize {
					told = f.Size
				}
			}
		})
	}
}

func TestSizeStaysWhenLastClientLeaves(t *testing.T) {
	h := newHarness(t, nil)
	_, p := h.create(t, "z")
	a := h.attach(t, "z")
	if err := a.Resize(context.Background(), 132, 43); err != nil {
		t.Fatal(err)
	}
	lastResize(t, p)
	a.Close()
	if got := h.size(t, "z"); got != (shared.Size{Cols: 132, Rows: 43}) {
		t.Fatalf("size %v after the last client left, want 132x43 kept", got)
	}
}

// Clients resizing at once leave the terminal, the record and the plugin at
// the size the policy picks from their last asks.
func TestConcurrentResizesConverge(t *testing.T) {
	for _, policy := range []SizePolicy{SizeLatest, SizeSmallest} {
		t.Run(string(policy), func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.SizePolicy = policy })
			_, p := h.create(t, "c")
			stop := make(chan struct{})
			drained := make(chan struct{})
			var (
				appliedMu sync.Mutex
				applied   shared.Size // the last size the plugin was given
			)
			go func() { // the fake PTY's resize channel holds 16
				defer close(drained)
				for {
					select {
					case size := <-p.Resizes():
						appliedMu.Lock()
						applied = size
						appliedMu.Unlock()
					case <-stop:
						return
					}
				}
			}()
			// After the clients' own cleanups (registered later, run
			// first), whose detaches resize too: a full channel would
			// hold them for good.
			t.Cleanup(func() { close(stop); <-drained })
			var clients []*Attachment
			for range 4 {
				clients = append(clients, h.attach(t, "c"))
			}
			done := make(chan struct{})
			for i, a := range clients {
				go func() {
					defer func() { done <- struct{}{} }()
					for j := range 50 {
						if err := a.Resize(context.Background(), 40+i*10+j%7, 10+i+j%5); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			for range clients {
				<-done
			}
			s := h.session(t, "c")
			s.mu.Lock()
			want, ok := s.wantedSize(policy)
			s.mu.Unlock()
			if !ok || h.size(t, "c") != want {
				t.Fatalf("size %v, want %v", h.size(t, "c"), want)
			}
			// The terminal is at the size recorded: the resizes reached
			// the plugin in the order their sizes were recorded. (The
			// fake takes each at once: what it was given is in Resizes.)
			deadline := time.Now().Add(5 * time.Second)
			for {
				appliedMu.Lock()
				got := applied
				appliedMu.Unlock()
				if got == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the plugin's last resize was to %v; the record says %v", got, want)
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

// A viewer changes nothing about a session's idleness: attaching and
// leaving at once does not end a session whose idle timeout is 0 that no
// writer has attached to yet, nor makes it IDLE; only a writer's leaving
// does, viewers or not. (A holder of the read-only token could otherwise
// kill such a session.)
func TestViewerLeavingEndsNothing(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.IdleTimeout = DestroyWhenIdle })
	events := h.m.Subscribe(t.Context())
	_, p := h.create(t, "v")
	v := h.attachWith(t, "v", AttachOptions{Mode: AttachRead})
	v.Close()
	if err := h.m.writer.flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec, err := h.m.GetSession(t.Context(), "v")
	if err != nil || rec.Status != StatusActive || !rec.IdleDeadline.IsZero() {
		t.Fatalf("after a viewer came and went: %+v, %v; want ACTIVE, no idle deadline", rec, err)
	}
	if kills, _ := p.Counts(); kills != 0 {
		t.Fatalf("a viewer's leaving killed the session (%d kills)", kills)
	}

	// A writer leaving with a viewer still attached ends it.
	w := h.attach(t, "v")
	h.attachWith(t, "v", AttachOptions{Mode: AttachRead})
	w.Close()
	for {
		select {
		case e := <-events:
			if e.Type == SessionDestroyed && e.SessionID == "v" {
				return
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the last writer left and the session with an idle timeout of 0 is not destroyed")
		}
	}
}

// With an idle timeout, a viewer attaching neither stops the timer nor
// makes the session ACTIVE, and its leaving does not start one: a
// viewer re-attaching cannot keep an abandoned session alive.
func TestViewerKeepsNothingAlive(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.IdleTimeout = time.Hour })
	h.create(t, "k")
	h.attach(t, "k").Close()
	before, _ := h.m.GetSession(t.Context(), "k")
	if before.Status != StatusIdle || before.IdleDeadline.IsZero() {
		t.Fatalf("after the writer left: %+v", before)
	}
	v := h.attachWith(t, "k", AttachOptions{Mode: AttachRead})
	rec, _ := h.m.GetSession(t.Context(), "k")
	if rec.Status != StatusIdle || !rec.IdleDeadline.Equal(before.IdleDeadline) || !rec.DetachedAt.Equal(before.DetachedAt) || rec.ActiveConnections != 1 {
		t.Errorf("with a viewer attached: %+v; want IDLE, the same deadline and detached_at, 1 connection", rec)
	}
	if h.idleTimer("k") == nil {
		t.Error("a viewer's attach stopped the idle timer")
	}
	v.Close()
	rec, _ = h.m.GetSession(t.Context(), "k")
	if !rec.IdleDeadline.Equal(before.IdleDeadline) {
		t.Errorf("a viewer's leaving moved the idle deadline: %v, was %v", rec.IdleDeadline, before.IdleDeadline)
	}
}

// A displaced viewer owes its close before anything else: the pump never
// writes output to it directly (direct.go), even as the session's only
// client, and never waits for it to keep up (flow.go).
func TestDisplacedViewerOwesItsClose(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxClients = 1 })
	h.create(t, "d")
	v := h.attachWith(t, "d", AttachOptions{Mode: AttachRead})
	v.Direct(func([]byte) error { return nil })
	expectOpen(t, v, "the viewer") // takes the hello's frames: nothing owed

	w := h.attach(t, "d") // displaces v
	w.Close()             // v is the session's only client now

	s := h.session(t, "d")
	s.mu.Lock()
	defer s.mu.Unlock()
	if !v.displaced {
		t.Fatal("the viewer was not displaced")
	}
	if !v.owesFrame() {
		t.Error("owesFrame() = false for a displaced viewer, whose next frame is its close")
	}
	for len(v.wakeC) > 0 { // v's goroutine took the wake-up, has not polled yet
		<-v.wakeC
	}
	v.waiting = true
	if a, _ := s.directTarget(0); a == v {
		t.Error("directTarget picked the displaced viewer: output would be written to it ahead of its close")
	}
	v.waiting = false
	v.behind, v.keptUp = true, time.Now()
	if wait, _ := s.mustWait(time.Now()); wait {
		t.Error("the pump waits for a displaced viewer to keep up")
	}
}
