package core

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ptyhost/ptyhost/shared"
)

// exitReleases tells the plugins to forget their exited sessions (the
// PTY's Close) once the sessions' ends are in the store, and not before:
// until then a plugin keeps the exit, so that a server that stops meanwhile
// (a database that is down) leaves it to the next server, which records
// it, instead of losing it to server_lost.
//
// The releases run on goroutines of their own: a plugin's cleanup may take
// long (DOCKER removes a container), and neither the store's writer nor
// the session may wait for it. A create of the same id waits for one
// (wait): the plugin forgets a session by its id.
type exitReleases struct {
	mu sync.Mutex
	// awaiting are the exited sessions whose end is not in the store yet.
	awaiting map[*session]struct{}
	// releasing are the releases under way, by session id, each closed
	// when done.
	releasing map[string]chan struct{}
	settled   bool           // settle has begun: the Manager is stopping
	running   sync.WaitGroup // releases under way; Add under mu, before settled
}

func newExitReleases() *exitReleases {
	return &exitReleases{awaiting: map[*session]struct{}{}, releasing: map[string]chan struct{}{}}
}

// await notes that s's end is on its way to the store, and returns what
// the writer calls once it has landed: s's release.
func (e *exitReleases) await(s *session) func() {
	e.mu.Lock()
	e.awaiting[s] = struct{}{}
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		_, ok := e.awaiting[s]
		delete(e.awaiting, s)
		if !ok || e.settled {
			e.mu.Unlock()
			if ok {
				s.release() // a write landing as the Manager stops
			}
			return
		}
		e.startLocked(s, false)
		e.mu.Unlock()
	}
}

// startLocked starts s's release, detaching it first with detach; e.mu
// must be held.
func (e *exitReleases) startLocked(s *session, detach bool) {
	done := make(chan struct{})
	prev := e.releasing[s.id]
	e.releasing[s.id] = done
	e.running.Add(1)
	go func() {
		defer e.running.Done()
		if prev != nil {
			<-prev // an earlier session of the id: its plugin call first
		}
		if d, ok := s.pty.(shared.Detacher); ok && detach {
			d.Detach()
		}
		s.release()
		e.mu.Lock()
		if e.releasing[s.id] == done {
			delete(e.releasing, s.id)
		}
		e.mu.Unlock()
		close(done)
	}()
}

// wait waits, within ctx, for the release under way of a session of id,
// if there is one: a new session of the id must not reach the plugin
// before the old one's Close.
func (e *exitReleases) wait(ctx context.Context, id string) error {
	e.mu.Lock()
	done := e.releasing[id]
	e.mu.Unlock()
	if done == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// settle, as the Manager stops and after its last flush, deals with the
// sessions whose end never reached the store: on Detach (keep) a session
// its plugin can keep is detached first, so that the plugin keeps its end
// for the next server; the others are released, which loses their end.
// Then it waits, within ctx, for every release under way; an error says
// some had not returned by then.
func (e *exitReleases) settle(ctx context.Context, keep bool) error {
	e.mu.Lock()
	e.settled = true
	for s := range e.awaiting {
		e.startLocked(s, keep)
	}
	e.awaiting = map[*session]struct{}{}
	e.mu.Unlock()
	done := make(chan struct{})
	go func() {
		e.running.Wait()
		close(done)
	}()
	if !doneWithin(ctx, done) {
		return errors.New("core: some plugins' cleanups of their sessions had not returned by the deadline")
	}
	return nil
}

// releaseGrace is how long a release is waited for past a deadline that
// has passed already: one that takes a moment must not be reported late
// because its caller came after the deadline.
const releaseGrace = 100 * time.Millisecond

// doneWithin reports whether done is closed by ctx's end, or within
// releaseGrace after it (select picks at random between a closed done and
// an ended ctx, and a caller after the deadline has an ended ctx).
func doneWithin(ctx context.Context, done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-ctx.Done():
	}
	t := time.NewTimer(releaseGrace)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// releaseWithin releases s, a session torn down, waiting for it within
// ctx: a plugin whose cleanup hangs must not hold a destroy, or a stop,
// past its deadline. A release that has not returned by then goes on in
// the background, and a create of the same id still waits for it (wait);
// false says it had not returned.
func (e *exitReleases) releaseWithin(ctx context.Context, s *session) bool {
	e.mu.Lock()
	var done chan struct{}
	if e.settled {
		// settle may be waiting for running: not added to it.
		done = make(chan struct{})
		go func() {
			defer close(done)
			s.release()
		}()
	} else {
		e.startLocked(s, false)
		done = e.releasing[s.id]
	}
	e.mu.Unlock()
	return doneWithin(ctx, done)
}
