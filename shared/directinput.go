package shared

import "sync/atomic"

// directInput is the terminal a plugin handed over for a session's input
// and size (direct_input): a raw descriptor, written without waiting, and
// kept out of Go's poller, whose epoll would wake the host for every
// output byte the terminal holds for the plugin.
type directInput struct {
	// slot is held by whoever uses fd, or sends what was meant for it as
	// frames; a channel, so that waiting for it honours a context.
	slot chan struct{}
	fd   int // -1 once closed or given up; the slot's holder's
	// gaveUp is set once the terminal was given up and what was being
	// written went as frames: input and resizes go as frames from then
	// on, without the slot.
	gaveUp atomic.Bool
	// closing is set by close: whoever holds the slot closes fd as it
	// lets go (release).
	closing atomic.Bool
	// raw writes input with raw system calls (writeNow); set before use.
	raw bool
}

func newDirectInput(fd int) *directInput {
	return &directInput{slot: make(chan struct{}, 1), fd: fd}
}

// release gives the slot back, then closes the descriptor if close
// asked for it meanwhile (closeIfAsked).
func (d *directInput) release() {
	<-d.slot
	d.closeIfAsked()
}

// close closes the descriptor now if no Write or Resize uses it, else has
// the one that does close it as it lets go, and returns at once either
// way: a write may never return, on a terminal that a plugin switched to
// blocking mode and does not read (rawio.WriteNow), and Close and Detach
// must not wait for it.
func (d *directInput) close() {
	d.closing.Store(true)
	d.closeIfAsked()
}

// closeIfAsked closes the descriptor if close asked for it and the slot
// is free. If it is held, its holder does so as it lets go: it looks
// after giving the slot back, and close asked before trying the slot.
func (d *directInput) closeIfAsked() {
	if !d.closing.Load() {
		return
	}
	select {
	case d.slot <- struct{}{}:
		d.closeLocked()
		<-d.slot
	default:
	}
}
