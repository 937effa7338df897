package core

// ring is a session's scrollback: the last capacity bytes of its output,
// addressed by absolute offset (the count of bytes the session has produced
// before). Readers keep their own offset; a reader whose offset has fallen
// behind start lost bytes and must resync at a safe point.
//
// The buffer grows on demand: it is allocated at the first output, at
// minRingSize, and doubles as output needs room, up to capacity. Byte off
// is at buf[off % len(buf)] whatever the buffer's size.
//
// ring is not safe for concurrent use; the session's mu guards it.
type ring struct {
	buf      []byte
	capacity int
	start    int64 // offset of the oldest byte kept
	end      int64 // offset just past the newest byte

	safe     []safePoint // ascending offsets, all >= start
	endModes modeSet     // the terminal modes at end
}

// minRingSize is the buffer a ring starts with at its first output.
const minRingSize = 4 << 10

func newRing(capacity int) *ring {
	return &ring{capacity: capacity, endModes: defaultModes}
}

// beginAt makes an empty ring begin at the absolute offset off: its first
// commit holds the bytes from off on, and a reader asking for an older
// offset is told those bytes are gone. A session taken up again from a
// plugin that kept its output (Reconcile) starts so, at the offset of the
// oldest byte the plugin kept.
func (r *ring) beginAt(off int64) {
	r.start, r.end = off, off
}

// footprint is the memory the ring's buffer holds.
func (r *ring) footprint() int { return cap(r.buf) }

// commit appends p, in which the session's scanner (scan.go) found points
// and which leaves the terminal in modes, evicting the oldest bytes beyond
// capacity.
func (r *ring) commit(p []byte, points []safePoint, modes modeSet) {
	r.safe = append(r.safe, points...)
	r.endModes = modes
	if len(p) == 0 {
		return
	}
	if want := r.end - r.start + int64(len(p)); want > int64(len(r.buf)) && len(r.buf) < r.capacity {
		size := max(len(r.buf), minRingSize)
		for int64(size) < want && size < r.capacity {
			size *= 2
		}
		r.resize(min(size, r.capacity))
	}
	n := int64(len(r.buf))
	if int64(len(p)) > n {
		// Only the last n bytes survive.
		r.end += int64(len(p)) - n
		p = p[len(p)-int(n):]
	}
	for len(p) > 0 {
		i := int(r.end % n)
		c := copy(r.buf[i:], p)
		p = p[c:]
		r.end += int64(c)
	}
	if r.end-r.start > n {
		r.start = r.end - n
		r.dropSafe()
	}
}

func (r *ring) dropSafe() {
	i := 0
	for i < len(r.safe) && r.safe[i].off < r.start {
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
	if r.start == 0 {
		return safePoint{off: 0, modes: defaultModes}
	}
	if len(r.safe) > 0 {
		return r.safe[0]
	}
	return safePoint{off: r.end, modes: r.endModes}
}

// holds reports whether a reader may continue exactly at off: the ring
// still keeps the byte there, or off is the end (nothing new yet).
func (r *ring) holds(off int64) bool {
	return off >= r.start && off <= r.end
}

// read copies bytes from offset off into p and returns how many. It returns
// ok=false when off is older than start: those bytes are gone.
func (r *ring) read(p []byte, off int64) (n int, ok bool) {
	if off < r.start {
		return 0, false
	}
	avail := r.end - off
	if avail <= 0 {
		return 0, true
	}
	if int64(len(p)) > avail {
		p = p[:avail]
	}
	size := int64(len(r.buf))
	for n < len(p) {
		i := int((off + int64(n)) % size)
		c := copy(p[n:], r.buf[i:])
		n += c
	}
	return n, true
}

// resize moves the bytes kept into a buffer of size bytes, which must hold
// them.
func (r *ring) resize(size int) {
	var nb []byte
	if size > 0 {
		nb = make([]byte, size)
	}
	for off := r.start; off < r.end; {
		i := int(off % int64(len(r.buf)))
		j := int(off % int64(size))
		n := min(len(r.buf)-i, size-j, int(r.end-off))
		copy(nb[j:j+n], r.buf[i:i+n])
		off += int64(n)
	}
	r.buf = nb
}

// shrink releases what a replay of the ended output does not need: it
// keeps the output from the oldest safe point within the last keep bytes
// (all of it if it is no more than keep bytes, from the newest safe point
// if none is that recent), and never the bytes at or after floor, which a
// reader has yet to read. The buffer is reallocated to fit.
func (r *ring) shrink(keep int, floor int64) {
	from := r.start
	if r.end-r.start > int64(keep) {
		from = r.end
		for i := range r.safe {
			if r.safe[i].off >= r.end-int64(keep) || i == len(r.safe)-1 {
				from = r.safe[i].off
				break
			}
		}
	}
	from = max(min(from, floor), r.start)
	if from == r.start && len(r.buf) == int(r.end-r.start) {
		return
	}
	r.start = from
	r.dropSafe()
	r.resize(int(r.end - r.start))
}

// drop releases every byte kept: readers resync at the end.
func (r *ring) drop() {
	r.start = r.end
	r.buf = nil
	r.safe = nil
}
