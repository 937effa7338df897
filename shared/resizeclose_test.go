package shared

import (
	"context"
	"errors"
	"testing"
)

// stuckResizePTY is a fakePTY whose Resize waits for its context to end,
// as one that asks a daemon that does not answer does, and then sends
// the context's error on ended.
type stuckResizePTY struct {
	*fakePTY
	entered chan struct{}
	ended   chan error
}

func (p *stuckResizePTY) Resize(ctx context.Context, _ Size) error {
	close(p.entered)
	<-ctx.Done()
	p.ended <- ctx.Err()
	return ctx.Err()
}

// A Close of the session ends a Resize under way at once: its context is
// the session's, which the close ends, not its own 10 s bound (which
// would hold the Close, and the host's hang-up, as long).
func TestCloseEndsAResizeUnderWay(t *testing.T) {
	forEachPath(t, func(t *testing.T, path clientPath) {
		ctx := testContext(t)
		ptys := make(chan *stuckResizePTY, 1)
		c, _ := glue(t, &fakeEnv{spawn: func(context.Context, SpawnRequest) (PTY, error) {
			p := &stuckResizePTY{fakePTY: newFakePTY(), entered: make(chan struct{}), ended: make(chan error, 1)}
			ptys <- p
			return p, nil
		}})
		c = path.of(c)
		p, err := c.Spawn(ctx, spawnReq("s1"))
		if err != nil {
			t.Fatal(err)
		}
		fake := receive(ctx, t, ptys, "spawn")
		if err := p.Resize(ctx, Size{Cols: 100, Rows: 30}); err != nil {
			t.Fatalf("Resize: %v", err)
		}
		waitClosed(ctx, t, fake.entered, "the plugin's Resize")
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := receive(ctx, t, fake.ended, "the Resize's end"); !errors.Is(err, context.Canceled) {
			t.Errorf("the Resize ended with %v, want context.Canceled by the close, not its bound", err)
		}
	})
}
