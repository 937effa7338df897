package core

import (
	"strings"
	"testing"
	"time"
	"unsafe"
)

// The memory a recording's queue holds behind a stalled writer stays
// within a small multiple of recordQueueBytes however small its events
// are: a trickle of one-byte reads, or keystrokes recorded as input, is
// bounded as well as a few large reads, which still fill most of it.
func TestRecorderQueueMemoryIsBounded(t *testing.T) {
	tests := []struct {
		name string
		add  func(r *recorder)
		// minPayload is the least data the queue must take before it
		// drops: the overhead must not shrink it for ordinary reads.
		minPayload int
	}{
		{"one-byte output", func(r *recorder) { r.output([]byte{'x'}) }, 0},
		{"typed input", func(r *recorder) { r.recordInput([]byte{'k'}) }, 0},
		{"resizes", func(r *recorder) { r.resize(80, 24) }, 0},
		{"64 KiB reads", func(r *recorder) { r.output([]byte(strings.Repeat("y", 64<<10))) }, recordQueueBytes - 64<<10 - recEventOverhead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No writer runs: the disk has stalled, and nothing leaves the
			// queue.
			r := &recorder{started: time.Now(), input: true, wake: make(chan struct{}, 1), done: make(chan struct{})}
			// Every event holds at least a byte, so a queue that takes
			// more than recordQueueBytes of them has no bound at all.
			for i := 0; r.dropped == 0 && i <= recordQueueBytes; i++ {
				tt.add(r)
			}
			if r.dropped == 0 {
				t.Fatalf("the queue took %d events and dropped none", len(r.queue))
			}
			held := cap(r.queue) * int(unsafe.Sizeof(recEvent{}))
			payload := 0
			for _, e := range r.queue {
				held += cap(e.data)
				payload += len(e.data)
			}
			if held > 2*recordQueueBytes {
				t.Errorf("the queue holds %d events in %d bytes, want at most %d (twice its bound)", len(r.queue), held, 2*recordQueueBytes)
			}
			if payload < tt.minPayload {
				t.Errorf("the queue dropped after %d bytes of data, want at least %d", payload, tt.minPayload)
			}
		})
	}
}
