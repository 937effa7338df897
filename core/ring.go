package core

import "bytes"

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

	// tr belongs to the session's pump alone: it scans output for safe
	// points before the pump takes the session's lock to commit it.
	tr tracker
}

// tracker finds safe points in output as it is produced.
type tracker struct {
	parser  boundary
	scanned int64       // offset just past the bytes scanned
	lastAdd int64       // offset of the newest safe point, for spacing
	found   []safePoint // scan's result, reused
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

// minRingSize is the buffer a ring starts with at its first output.
const minRingSize = 4 << 10

func newRing(capacity int) *ring {
	r := &ring{capacity: capacity, endModes: defaultModes}
	r.tr.parser.modes = defaultModes
	return r
}

// footprint is the memory the ring's buffer holds.
func (r *ring) footprint() int { return cap(r.buf) }

// write scans and commits p in one go.
func (r *ring) write(p []byte) {
	r.commit(p, r.tr.scan(p), r.tr.parser.modes)
}

// commit appends p, which the tracker found points in and which leaves the
// terminal in modes, evicting the oldest bytes beyond capacity.
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

// scan runs the boundary parser over p, the output after what it scanned
// before, and returns the safe points in it (valid until the next scan).
// Plain text in the ground state, most of any output, is skipped with
// IndexByte to the next escape or newline; only escape sequences go byte by
// byte.
func (t *tracker) scan(p []byte) []safePoint {
	t.found = t.found[:0]
	base := t.scanned
	t.scanned += int64(len(p))
	for i := 0; i < len(p); {
		if t.parser.state != stGround {
			c := p[i]
			t.parser.step(c)
			i++
			t.checkSafe(base+int64(i), c)
			continue
		}
		rest := p[i:]
		stop := len(rest)
		if j := bytes.IndexByte(rest, 0x1b); j >= 0 {
			stop = j
		}
		if j := bytes.IndexByte(rest[:stop], '\n'); j >= 0 {
			stop = j
		}
		t.gapPoints(rest[:stop], base+int64(i))
		t.parser.skipText(rest[:stop])
		i += stop
		if i < len(p) { // the escape or newline itself
			c := p[i]
			t.parser.step(c)
			i++
			t.checkSafe(base+int64(i), c)
		}
	}
	return t.found
}

// checkSafe records off as a safe point if the parser allows it there, c
// being the byte just before it.
func (t *tracker) checkSafe(off int64, c byte) {
	gap := off - t.lastAdd
	if gap < minSafeGap || !t.parser.safe() {
		return
	}
	if c == '\n' || gap >= maxSafeGap {
		t.add(off)
	}
}

// gapPoints records safe points every maxSafeGap bytes inside text, a run
// of ground-state bytes without escapes or newlines starting at offset
// start: before any byte that does not continue a UTF-8 sequence, where the
// bytes before it complete their character as the parser sees them (so a
// point does not depend on where the output was split into writes).
func (t *tracker) gapPoints(text []byte, start int64) {
	for {
		q := max(t.lastAdd+maxSafeGap-start, 0) // index of the first candidate
		for q < int64(len(text)) && (text[q]&0xC0 == 0x80 || t.needBefore(text, q) > 0) {
			q++
		}
		if q >= int64(len(text)) {
			return
		}
		t.add(start + q)
	}
}

// needBefore returns the UTF-8 continuation bytes the parser expects after
// text[:q].
func (t *tracker) needBefore(text []byte, q int64) int {
	b := boundary{utf8Need: t.parser.utf8Need}
	b.skipText(text[:q])
	return b.utf8Need
}

func (t *tracker) add(off int64) {
	t.found = append(t.found, safePoint{off: off, modes: t.parser.modes})
	t.lastAdd = off
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
