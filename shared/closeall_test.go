package shared

import (
	"context"
	"testing"
	"time"
)

// stuckPTY is a fakePTY whose Close does not return until released.
type stuckPTY struct {
	*fakePTY
	release chan struct{}
}

func (p *stuckPTY) Close() error {
	<-p.release
	return p.fakePTY.Close()
}

// CloseAll kills every session with ctx's deadline, and returns when ctx
// ends even if an adapter's Close hangs, so a plugin whose host died
// always exits.
func TestCloseAllIsBounded(t *testing.T) {
	srv := NewGRPCServer(&fakeEnv{}, nil)
	p := &stuckPTY{fakePTY: newFakePTY(), release: make(chan struct{})}
	sess := newServerSession(SpawnRequest{SessionID: "stuck"}, DefaultScrollbackBytes)
	sess.start(p)
	close(sess.ready)
	srv.sessions["stuck"] = sess
	t.Cleanup(func() { close(p.release) })

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() {
		srv.CloseAll(ctx)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("CloseAll did not return after its ctx ended while Close hung")
	}
	select {
	case <-p.killed:
	default:
		t.Error("CloseAll did not kill the session")
	}
}
