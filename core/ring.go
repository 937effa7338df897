package core

// ring is a session's scrollback: the last cap bytes of its output, addressed
// by absolute offset (the count of bytes the session has produced before).
// Readers keep their own offset; a reader whose offset has fallen behind
// start lost bytes and must resync at a safe point.
//
// ring is not safe for concurrent use; the session's mu guards it.
type ring struct {
	buf   []byte
	start int64 // offset of the oldest byte kept
	end   int64 // offset just past the newest byte

	parser  boundary
	safe    []safePoint // ascending offsets, all >= start
	lastAdd int64       // offset of the newest safe point, for spacing
}

// safePoint is an offset where a replay may begin, with the terminal modes
// in force there.
type safePoint struct {
	off   int64
	modes modeSet
}

// Safe points are kept at least minSafeGap bytes apart, at line starts; a
// stream without newlines gets one every maxSafeGap bytes anyway.
const (
	minSafeGap = 1 << 10
	maxSafeGap = 16 << 10
)

func newRing(capacity int) *ring {
	r := &ring{buf: make([]byte, capacity)}
	r.parser.modes = defaultModes
	return r
}

// write appends p, evicting the oldest bytes beyond capacity.
func (r *ring) write(p []byte) {
	r.track(p)
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

// track runs the boundary parser over p and records safe points.
func (r *ring) track(p []byte) {
	base := r.end
	for i, c := range p {
		r.parser.step(c)
		off := base + int64(i) + 1
		gap := off - r.lastAdd
		if gap < minSafeGap || !r.parser.safe() {
			continue
		}
		if c == '\n' || gap >= maxSafeGap {
			r.safe = append(r.safe, safePoint{off: off, modes: r.parser.modes})
			r.lastAdd = off
		}
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
	return safePoint{off: r.end, modes: r.parser.modes}
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
