package main

import (
	"context"
	"os"
	"sync"
	"time"
)

// resized is what pollResizes delivers: "the terminal changed size", where
// the platform has no signal that says so (Windows).
type resized struct{}

func (resized) String() string { return "terminal resized" }
func (resized) Signal()        {}

// pollResizes looks at size every interval, from now until stop is called
// or ctx ends, and delivers a value on the channel whenever the size
// differs from the one it saw last (the first look sets it). Changes
// between two deliveries the reader has not taken yet make one.
func pollResizes(ctx context.Context, interval time.Duration, size func() (cols, rows int, ok bool)) (_ <-chan os.Signal, stop func()) {
	ch := make(chan os.Signal, 1)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		lastCols, lastRows, _ := size()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cols, rows, ok := size()
			if !ok || (cols == lastCols && rows == lastRows) {
				continue
			}
			lastCols, lastRows = cols, rows
			select {
			case ch <- resized{}:
			default: // one is waiting already
			}
		}
	}()
	return ch, func() { cancel(); wg.Wait() }
}
