package core

import "github.com/ptyhost/ptyhost/internal/bytering"

// ring is a session's scrollback: the last capacity bytes of its output,
// addressed by absolute offset (the count of bytes the session has produced
// before), in a bytering.Ring, with the safe points a reader may resync at
// and the terminal modes at its end. Readers keep their own offset; a
// reader whose offset has fallen behind Start lost bytes and must resync at
// a safe point.
//
// ring is not safe for concurrent use; the session's mu guards it.
type ring struct {
	bytering.Ring

	safe     []safePoint // ascending offsets, all >= Start
	endModes modeSet     // the terminal modes at End
}

func newRing(capacity int) *ring {
	return &ring{Ring: bytering.New(capacity, 0), endModes: defaultModes}
}

// beginAt makes an empty ring begin at the absolute offset off: its first
// commit holds the bytes from off on, and a reader asking for an older
// offset is told those bytes are gone. A session taken up again from a
// plugin that kept its output (Reconcile) starts so, at the offset of the
// oldest byte the plugin kept.
func (r *ring) beginAt(off int64) {
	r.Ring = bytering.New(r.Capacity(), off)
}

// commit appends p, in which the session's scanner (scan.go) found points
// and which leaves the terminal in modes, evicting the oldest bytes beyond
// capacity.
func (r *ring) commit(p []byte, points []safePoint, modes modeSet) {
	r.safe = append(r.safe, points...)
	r.endModes = modes
	if r.Write(p) {
		r.dropSafe()
	}
}

func (r *ring) dropSafe() {
	i := 0
	for i < len(r.safe) && r.safe[i].off < r.Start() {
		i++
	}
	if i > 0 {
		r.safe = append(r.safe[:0], r.safe[i:]...)
	}
}

// replayPoint is where a reader that has nothing yet should begin: the
// session's first byte while it is still kept, else the oldest safe point
// (or the end, when no safe point is left, which means nothing to replay).
func (r *ring) replayPoint() safePoint {
	if r.Start() == 0 {
		return safePoint{off: 0, modes: defaultModes}
	}
	if len(r.safe) > 0 {
		return r.safe[0]
	}
	return safePoint{off: r.End(), modes: r.endModes}
}

// shrink releases what a replay of the ended output does not need: it
// keeps the output from the newest safe point at least keep bytes before
// the end, so that the replay holds at least keep bytes and at most the
// spacing of safe points more (all of it if it is no more than keep bytes,
// from the replay point if no safe point is that old), and never the
// bytes at or after floor, which a reader has yet to read. The buffer is
// reallocated to fit.
//
// Not from the oldest safe point within the last keep bytes: without
// newlines (a full-screen program, a progress bar) safe points are up to
// maxSafeGap apart, so that one could be a few bytes from the end, and a
// client attaching after the exit would see a blank screen.
func (r *ring) shrink(keep int, floor int64) {
	start, end := r.Start(), r.End()
	from := start
	if end-start > int64(keep) {
		from = r.replayPoint().off
		for i := len(r.safe) - 1; i >= 0; i-- {
			if r.safe[i].off <= end-int64(keep) {
				from = r.safe[i].off
				break
			}
		}
	}
	from = max(min(from, floor), start)
	if from == start && r.Size() == int(end-start) {
		return
	}
	r.Forget(from)
	r.dropSafe()
	r.Resize(int(end - from))
}

// drop releases every byte kept: readers resync at the end.
func (r *ring) drop() {
	r.Forget(r.End())
	r.Resize(0)
	r.safe = nil
}
