package fakeenv

import (
	"context"
	"sync"

	"github.com/ptyhost/ptyhost/shared"
)

// UnreadPTY is a PTY whose program does not read its input: a write waits
// until Release, and so does a resize, which goes in order with the input
// (as the plugin SDK's does). Output, exit and the rest are the PTY's.
type UnreadPTY struct {
	*PTY
	writing  chan struct{}
	release  chan struct{}
	once     sync.Once
	released sync.Once
}

// NewUnreadPTY returns a running terminal for req whose input is not read
// until Release.
func NewUnreadPTY(req shared.SpawnRequest) *UnreadPTY {
	return &UnreadPTY{PTY: NewPTY(req), writing: make(chan struct{}), release: make(chan struct{})}
}

// Writing is closed once a write waits.
func (p *UnreadPTY) Writing() <-chan struct{} { return p.writing }

// Release lets the program read: writes and resizes go through from now
// on. Later calls do nothing.
func (p *UnreadPTY) Release() { p.released.Do(func() { close(p.release) }) }

// Write waits until Release, then passes b to Input.
func (p *UnreadPTY) Write(b []byte) (int, error) {
	p.once.Do(func() { close(p.writing) })
	<-p.release
	return p.PTY.Write(b)
}

// Resize waits until Release or ctx's end, then passes s to Resizes.
func (p *UnreadPTY) Resize(ctx context.Context, s shared.Size) error {
	select {
	case <-p.release:
		return p.PTY.Resize(ctx, s)
	case <-ctx.Done():
		return ctx.Err()
	}
}
