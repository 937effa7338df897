package sharedtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"sync"
	"testing"

	"github.com/ptyhost/ptyhost/shared"
)

// Term drives one spawned PTY in a test: a goroutine reads all output into a
// buffer, and the methods wait for it with the context's deadline. It is
// what Run uses; plugin tests can use it for their own cases.
type Term struct {
	t   testing.TB
	PTY shared.PTY

	mu sync.Mutex
	// mu protects the following.
	out     bytes.Buffer
	readErr error         // set when Read failed; io.EOF at the end
	changed chan struct{} // closed and replaced whenever out or readErr change

	readerDone chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// NewTerm starts reading p. The test's cleanup closes p (if the test did not)
// and waits for the reader.
func NewTerm(t testing.TB, p shared.PTY) *Term {
	t.Helper()
	term := &Term{t: t, PTY: p, changed: make(chan struct{}), readerDone: make(chan struct{})}
	go term.read()
	t.Cleanup(func() {
		_ = term.Close()
		<-term.readerDone
	})
	return term
}

// Close closes the PTY once; later calls return the first call's error.
func (term *Term) Close() error {
	term.closeOnce.Do(func() { term.closeErr = term.PTY.Close() })
	return term.closeErr
}

func (term *Term) read() {
	defer close(term.readerDone)
	buf := make([]byte, 32<<10)
	for {
		n, err := term.PTY.Read(buf)
		term.mu.Lock()
		term.out.Write(buf[:n])
		if err != nil {
			term.readErr = err
		}
		close(term.changed)
		term.changed = make(chan struct{})
		term.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// waitFor waits until cond holds for the output and read error so far, and
// returns them; ok is false if ctx ended first.
func (term *Term) waitFor(ctx context.Context, cond func(out []byte, readErr error) bool) (out []byte, readErr error, ok bool) {
	for {
		term.mu.Lock()
		out, readErr, changed := term.out.Bytes(), term.readErr, term.changed
		ok := cond(out, readErr)
		out = bytes.Clone(out)
		term.mu.Unlock()
		if ok {
			return out, readErr, true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return out, readErr, false
		}
	}
}

// Expect waits until the output contains want, and fails the test if the
// output ends or ctx ends first.
func (term *Term) Expect(ctx context.Context, want string) {
	term.t.Helper()
	out, err, ok := term.waitFor(ctx, func(out []byte, readErr error) bool {
		return bytes.Contains(out, []byte(want)) || readErr != nil
	})
	if !bytes.Contains(out, []byte(want)) {
		if ok {
			term.t.Fatalf("output ended (%v) without %q; output: %q", err, want, tail(out))
		}
		term.t.Fatalf("no %q in the output before the deadline; output so far: %q", want, tail(out))
	}
}

// Match waits until the output matches re and returns the leftmost match
// and its submatches. It fails the test if the output ends or ctx ends
// first.
func (term *Term) Match(ctx context.Context, re *regexp.Regexp) []string {
	term.t.Helper()
	out, err, ok := term.waitFor(ctx, func(out []byte, readErr error) bool {
		return re.Match(out) || readErr != nil
	})
	m := re.FindSubmatch(out)
	if m == nil {
		if ok {
			term.t.Fatalf("output ended (%v) without a match for %s; output: %q", err, re, tail(out))
		}
		term.t.Fatalf("no match for %s in the output before the deadline; output so far: %q", re, tail(out))
	}
	subs := make([]string, len(m))
	for i, b := range m {
		subs[i] = string(b)
	}
	return subs
}

// ReadAll waits until Read returned io.EOF and returns all output. It fails
// the test if Read failed otherwise or ctx ended first.
func (term *Term) ReadAll(ctx context.Context) []byte {
	term.t.Helper()
	out, err, ok := term.waitFor(ctx, func(_ []byte, readErr error) bool { return readErr != nil })
	if !ok {
		term.t.Fatalf("output did not end before the deadline; output so far: %q", tail(out))
	}
	if !errors.Is(err, io.EOF) {
		term.t.Fatalf("output ended with %v, not io.EOF; output: %q", err, tail(out))
	}
	return out
}

// Ended waits until Read returned an error (io.EOF or not) and returns it.
func (term *Term) Ended(ctx context.Context) error {
	term.t.Helper()
	out, err, ok := term.waitFor(ctx, func(_ []byte, readErr error) bool { return readErr != nil })
	if !ok {
		term.t.Fatalf("output did not end before the deadline; output so far: %q", tail(out))
	}
	return err
}

// Write sends input, failing the test on error.
func (term *Term) Write(s string) {
	term.t.Helper()
	if _, err := term.PTY.Write([]byte(s)); err != nil {
		term.t.Fatalf("write %q: %v", s, err)
	}
}

// Wait reads to the end and returns the exit status, failing the test on
// any error.
func (term *Term) Wait(ctx context.Context) shared.ExitStatus {
	term.t.Helper()
	term.ReadAll(ctx)
	st, err := term.PTY.Wait(ctx)
	if err != nil {
		term.t.Fatalf("wait: %v", err)
	}
	return st
}

// tail shortens long output for failure messages.
func tail(out []byte) []byte {
	const max = 2048
	if len(out) > max {
		return out[len(out)-max:]
	}
	return out
}
