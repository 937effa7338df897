package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptyhost/ptyhost/core/wsproto"
)

// What attach reads from the local terminal, keystrokes up to the detach
// key, and the sender that takes them to the server.

// maxQueuedInput bounds what is typed and not yet sent: beyond it, the
// input is read no further until some is sent.
const maxQueuedInput = 1 << 20

// detachGrace is how long a detach waits for what was typed before the
// detach key to be sent: a server that does not read it does not keep
// the user from leaving for longer.
const detachGrace = 2 * time.Second

// input reads stdin for attach, across reconnections. What is typed waits
// in a queue for the connection's sender (attachment.send), so that the
// detach key is seen however slowly the server takes the input.
type input struct {
	detached chan struct{} // closed when the detach key is read
	err      chan error    // a read error other than EOF

	ready   chan struct{} // has a value when the queue has bytes
	room    chan struct{} // has a value when take made room in the queue
	settled chan struct{} // has a value when a send ended

	mu      sync.Mutex
	queued  []byte // typed and not yet taken
	sending bool   // what take returned is being sent
}

func newInput() *input {
	return &input{
		detached: make(chan struct{}),
		err:      make(chan error, 1),
		ready:    make(chan struct{}, 1),
		room:     make(chan struct{}, 1),
		settled:  make(chan struct{}, 1),
	}
}

// poke leaves a value in c, unless one is there already.
func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// pump reads r until it ends, the detach key is read (it closes
// in.detached after queueing what came before the key) or ctx is done. A
// read error other than EOF goes to in.err; at EOF the session keeps
// running and its output keeps coming.
func (in *input) pump(ctx context.Context, r io.Reader, detachKey int) {
	buf := make([]byte, inputBufSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			p, detach := buf[:n], false
			if detachKey >= 0 {
				if i := bytes.IndexByte(p, byte(detachKey)); i >= 0 {
					p, detach = p[:i], true
				}
			}
			if !in.put(ctx, p) {
				return
			}
			if detach {
				close(in.detached)
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				in.err <- err
			}
			return
		}
	}
}

// put queues p, waiting while the queue is full; false when ctx ended
// first.
func (in *input) put(ctx context.Context, p []byte) bool {
	for len(p) > 0 {
		in.mu.Lock()
		n := min(len(p), maxQueuedInput-len(in.queued))
		in.queued = append(in.queued, p[:n]...)
		in.mu.Unlock()
		if n > 0 {
			poke(in.ready)
			p = p[n:]
			continue
		}
		select {
		case <-in.room:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// take returns up to max queued bytes, oldest first, and marks them being
// sent until sent is called; nil when none are queued.
func (in *input) take(max int) []byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.queued) == 0 {
		return nil
	}
	n := min(len(in.queued), max)
	p := bytes.Clone(in.queued[:n])
	in.queued = in.queued[:copy(in.queued, in.queued[n:])]
	in.sending = true
	if len(in.queued) > 0 {
		poke(in.ready)
	}
	poke(in.room)
	return p
}

// sent says that what take returned was sent, or failed to be.
func (in *input) sent() {
	in.mu.Lock()
	in.sending = false
	in.mu.Unlock()
	poke(in.settled)
}

// wakeNext leaves in.ready set if bytes are queued: a sender that ends may
// have taken the wake-up meant for them.
func (in *input) wakeNext() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.queued) > 0 {
		poke(in.ready)
	}
}

// drop discards what is queued: typed while there is no connection.
func (in *input) drop() {
	in.mu.Lock()
	in.queued = in.queued[:0]
	in.mu.Unlock()
	poke(in.room)
}

// idle reports whether everything taken was sent and nothing is queued.
func (in *input) idle() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.queued) == 0 && !in.sending
}

// settle waits until everything queued was sent, ctx ends, or within
// passes.
func (in *input) settle(ctx context.Context, within time.Duration) {
	t := time.NewTimer(within)
	defer t.Stop()
	for !in.idle() {
		select {
		case <-in.settled:
		case <-ctx.Done():
			return
		case <-t.C:
			return
		}
	}
}

// send sends what is typed (in), and tty's size whenever resized has a
// value, until ctx ends; a size waiting goes before input waiting. A failure to send ends the connection, and with
// it the reader; what failed is lost, as is what a read-only attachment
// takes and drops. A send the server has not taken within a.inputStall
// ends the connection too, setting stalled first: a server that takes no
// input would otherwise hold what is typed, the detach key behind it
// included, for as long as it keeps the connection.
func (a *attachment) send(ctx context.Context, conn *wsproto.Conn, in *input, tty *terminal, resized <-chan struct{}, stalled *atomic.Bool) {
	defer in.wakeNext()
	// The flag is set before the connection is closed, so that the reader
	// finds it when its read fails.
	within := func(f func(context.Context) error) {
		t := time.AfterFunc(a.inputStall, func() {
			stalled.Store(true)
			_ = conn.Close()
		})
		_ = f(ctx)
		t.Stop()
	}
	sendSize := func() {
		if cols, rows, ok := tty.size(); ok {
			within(func(ctx context.Context) error { return conn.Resize(ctx, cols, rows) })
		}
	}
	for {
		// A size waiting goes first, before input waiting beside it: the
		// first size and what was typed before the connection are both
		// waiting at the start, and the program must see the size first
		// (select would pick one of them at random).
		select {
		case <-resized:
			sendSize()
			continue
		default:
		}
		select {
		case <-ctx.Done():
			return
		case <-resized:
			sendSize()
		case <-in.ready:
			for ctx.Err() == nil {
				p := in.take(inputBufSize)
				if p == nil {
					break
				}
				if !a.readOnly {
					within(func(ctx context.Context) error { return conn.Input(ctx, p) })
				}
				in.sent()
			}
		}
	}
}
