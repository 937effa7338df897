package core

import (
	"context"
	"sync"
	"time"
)

// EventType says what happened to a session.
type EventType string

// Event types, in the order a session's events occur.
const (
	// SessionCreated: the session's process started.
	SessionCreated EventType = "session_created"
	// SessionResumed: a session a previous server left running, which its
	// plugin kept, is live again in this one (Reconcile). It comes in place
	// of SessionCreated; the events after it are a created session's.
	SessionResumed EventType = "session_resumed"
	// SessionError: the session failed to start, or ended abnormally.
	SessionError EventType = "session_error"
	// SessionExited: the session's process exited; Exit says how.
	SessionExited EventType = "session_exited"
	// SessionDestroyed: the session was destroyed and is gone.
	SessionDestroyed EventType = "session_destroyed"
	// EventsLost names no session: the events may have missed some
	// (Options.Relay lost its connection, or another node could not send
	// its own). A subscriber lists the sessions again.
	EventsLost EventType = "events_lost"
)

// Event is one thing that happened to a session.
type Event struct {
	Type      EventType
	SessionID string
	Time      time.Time
	// Exit is set on SessionExited, on SessionRestarted (the replaced
	// process's), and on SessionError when the session ended with an
	// exit status.
	Exit *ExitStatus
	// Err is set on SessionError.
	Err error
	// Node names the node of a cluster the event happened on (its
	// Options.NodeName); empty on a single server.
	Node string
}

// eventBufferSize is how many events a subscriber may fall behind by before
// events are dropped for it.
const eventBufferSize = 256

// bus fans events out to subscribers. Publish never blocks: a subscriber
// whose buffer is full misses the event (and is counted in dropped).
type bus struct {
	mu      sync.Mutex // protects the following
	subs    map[*subscriber]struct{}
	closed  bool
	dropped func()
}

type subscriber struct {
	ch   chan Event
	stop func() bool // stops the context.AfterFunc that unsubscribes
}

func newBus(dropped func()) *bus {
	return &bus{subs: make(map[*subscriber]struct{}), dropped: dropped}
}

// subscribe returns a channel of events that is closed when ctx ends or the
// bus closes.
func (b *bus) subscribe(ctx context.Context) <-chan Event {
	s := &subscriber{ch: make(chan Event, eventBufferSize)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		close(s.ch)
		return s.ch
	}
	b.subs[s] = struct{}{}
	s.stop = context.AfterFunc(ctx, func() { b.unsubscribe(s) })
	return s.ch
}

func (b *bus) unsubscribe(s *subscriber) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		delete(b.subs, s)
		close(s.ch)
	}
}

// publish delivers e to every subscriber that has room for it. Events are
// delivered to each subscriber in publish order.
func (b *bus) publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.ch <- e:
		default:
			if b.dropped != nil {
				b.dropped()
			}
		}
	}
}

// close ends every subscription.
func (b *bus) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		s.stop()
		delete(b.subs, s)
		close(s.ch)
	}
}
