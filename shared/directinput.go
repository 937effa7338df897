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

// release gives the slot back, closing the descriptor first if close
// asked for it meanwhile.
func (d *directInput) release() {
	if d.closing.Load() {
		d.closeLocked()
	}
	<-d.slot
	// close may have come between the check and the release, and found
	// the slot held: close now, unless someone else took the slot
	// meanwhile, who then closes as it lets go.
	if d.closing.Load() {
		select {
		case d.slot <- struct{}{}:
			d.closeLocked()
			<-d.slot
		default:
		}
	}
}

// close closes the descriptor now if no Write or Resize uses it, else has
// the one that does close it as it lets go, and returns at once either
// way: a write may never return, on a terminal that a plugin switched to
// blocking mode and does not read (rawio.WriteNow), and Close and Detach
// must not wait for it.
func (d *directInput) close() {
	d.closing.Store(true)
	select {
	case d.slot <- struct{}{}:
		d.release()
	default:
		// Held: the holder closes it as it lets go (release looks again
		// after giving the slot back).
	}
}
