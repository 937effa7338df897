package core

import (
	"context"
	"sync"

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
// the session may wait for it.
type exitReleases struct {
	mu sync.Mutex
	// awaiting are the exited sessions whose end is not in the store yet.
	awaiting map[*session]struct{}
	running  sync.WaitGroup // releases under way
}

func newExitReleases() *exitReleases {
	return &exitReleases{awaiting: map[*session]struct{}{}}
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
		e.mu.Unlock()
		if ok {
			e.running.Go(s.release)
		}
	}
}

// settle, as the Manager stops and after its last flush, deals with the
// sessions whose end never reached the store: on Detach (keep) a session
// its plugin can keep is detached first, so that the plugin keeps its end
// for the next server; the others are released, which loses their end.
// Then it waits, within ctx, for every release under way.
func (e *exitReleases) settle(ctx context.Context, keep bool) {
	e.mu.Lock()
	left := e.awaiting
	e.awaiting = map[*session]struct{}{}
	e.mu.Unlock()
	for s := range left {
		e.running.Go(func() {
			if d, ok := s.pty.(shared.Detacher); ok && keep {
				d.Detach()
			}
			s.release()
		})
	}
	done := make(chan struct{})
	go func() {
		e.running.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
