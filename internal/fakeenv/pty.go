package fakeenv

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/ptyhost/ptyhost/shared"
)

// PTY is a terminal whose output the test writes and whose exit the test
// decides. Output goes through a pipe: a write blocks until the reader (the
// code under test) takes it.
type PTY struct {
	// Req is the request the PTY was spawned with.
	Req shared.SpawnRequest
	// KillErr and CloseErr are what Kill and Close return; set them
	// before the PTY is handed to the code under test.
	KillErr, CloseErr error

	outR    *io.PipeReader
	outW    *io.PipeWriter
	input   chan []byte
	resizes chan shared.Size

	mu     sync.Mutex
	exit   *shared.ExitStatus
	exitC  chan struct{}
	kills  int
	closes int
}

var _ shared.PTY = (*PTY)(nil)

// NewPTY returns a running terminal for req. Its input holds 64 writes and
// its resizes 16 before Write and Resize block.
func NewPTY(req shared.SpawnRequest) *PTY {
	r, w := io.Pipe()
	return &PTY{
		Req: req, outR: r, outW: w,
		input:   make(chan []byte, 64),
		resizes: make(chan shared.Size, 16),
		exitC:   make(chan struct{}),
	}
}

// Read returns what the test wrote as the child's output; io.EOF once the
// child ended and all of it was read.
func (p *PTY) Read(b []byte) (int, error) { return p.outR.Read(b) }

// Write passes a copy of b to Input, as the keystrokes typed into the child.
func (p *PTY) Write(b []byte) (int, error) {
	p.input <- slices.Clone(b)
	return len(b), nil
}

// Resize passes s to Resizes.
func (p *PTY) Resize(_ context.Context, s shared.Size) error {
	p.resizes <- s
	return nil
}

// Wait returns the exit status given to End once the child ended, or ctx's
// error.
func (p *PTY) Wait(ctx context.Context) (shared.ExitStatus, error) {
	select {
	case <-p.exitC:
	case <-ctx.Done():
		return shared.ExitStatus{}, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return *p.exit, nil
}

// Kill counts the call and ends the child as a hang-up does (code 129,
// SIGHUP), then returns KillErr.
func (p *PTY) Kill(context.Context) error {
	p.mu.Lock()
	p.kills++
	p.mu.Unlock()
	p.End(shared.ExitStatus{Code: 129, Signal: "SIGHUP"})
	return p.KillErr
}

// Close counts the call and returns CloseErr.
func (p *PTY) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closes++
	return p.CloseErr
}

// Input delivers each Write's bytes.
func (p *PTY) Input() <-chan []byte { return p.input }

// Resizes delivers each size passed to Resize.
func (p *PTY) Resizes() <-chan shared.Size { return p.resizes }

// WriteOutput writes b as the child's output. It blocks until the reader
// took all of it, and fails once the child ended or crashed.
func (p *PTY) WriteOutput(b []byte) (int, error) { return p.outW.Write(b) }

// Output is WriteOutput that fails the test on an error. Call it from the
// test's goroutine.
func (p *PTY) Output(t testing.TB, b []byte) {
	t.Helper()
	if _, err := p.outW.Write(b); err != nil {
		t.Fatalf("fakeenv: output: %v", err)
	}
}

// End makes the child exit with st, after all output written so far: Read
// returns io.EOF once that is read, and Wait returns st. Only the first
// End (or Kill) counts.
func (p *PTY) End(st shared.ExitStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exit != nil {
		return
	}
	p.exit = &st
	close(p.exitC)
	p.outW.Close()
}

// Crash makes the output stream fail as it does when the plugin dies: Read
// returns an error wrapping shared.ErrPluginExited.
func (p *PTY) Crash() {
	p.outW.CloseWithError(fmt.Errorf("stream broke: %w", shared.ErrPluginExited))
}

// Fail makes the output stream fail with err, as the SDK's client does
// when the plugin breaks the protocol (shared.ErrPluginProtocol).
func (p *PTY) Fail(err error) {
	p.outW.CloseWithError(err)
}

// Counts returns how many times Kill and Close were called.
func (p *PTY) Counts() (kills, closes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kills, p.closes
}
