// Package bytering is the byte ring that both ends of a session keep its
// output in: the server's scrollback (core) and a plugin's buffer for a
// server that comes back (shared). It holds the last bytes written, up to a
// capacity, addressed by absolute offset: the count of bytes written before
// them, from a first offset given at the start.
//
// The buffer grows on demand: it is allocated at the first write, at
// MinSize (or the capacity, if smaller), and doubles as the bytes kept need
// room, up to the capacity, so that an idle session holds little. Byte off
// is at buf[off % len(buf)] whatever the buffer's size.
//
// A Ring is not safe for concurrent use; its owner's lock guards it.
package bytering

// MinSize is the buffer a Ring starts with at its first write.
const MinSize = 256

// Ring is a byte ring; the zero value has no capacity (see New).
type Ring struct {
	buf      []byte
	capacity int
	start    int64 // offset of the oldest byte kept
	end      int64 // offset just past the newest byte
}

// New returns an empty ring of capacity bytes whose first byte will be at
// offset.
func New(capacity int, offset int64) Ring {
	return Ring{capacity: capacity, start: offset, end: offset}
}

// Start is the offset of the oldest byte kept.
func (r *Ring) Start() int64 { return r.start }

// End is the offset just past the newest byte.
func (r *Ring) End() int64 { return r.end }

// Capacity is the most bytes the ring keeps.
func (r *Ring) Capacity() int { return r.capacity }

// Footprint is the memory the ring's buffer holds.
func (r *Ring) Footprint() int { return cap(r.buf) }

// Write appends p, growing the buffer as needed and evicting the oldest
// bytes beyond the capacity. It reports whether bytes were evicted.
func (r *Ring) Write(p []byte) (evicted bool) {
	if len(p) == 0 {
		return false
	}
	if want := r.end - r.start + int64(len(p)); want > int64(len(r.buf)) && len(r.buf) < r.capacity {
		size := max(len(r.buf), min(MinSize, r.capacity))
		for int64(size) < want && size < r.capacity {
			size *= 2
		}
		r.Resize(min(size, r.capacity))
	}
	n := int64(len(r.buf))
	if int64(len(p)) > n {
		// Only the last n bytes survive.
		r.end += int64(len(p)) - n
		p = p[len(p)-int(n):]
	}
	for len(p) > 0 {
		c := copy(r.buf[r.end%n:], p)
		p = p[c:]
		r.end += int64(c)
	}
	if r.end-r.start > n {
		r.start = r.end - n
		return true
	}
	return false
}

// Holds reports whether a reader may continue exactly at off: the ring
// still keeps the byte there, or off is the end (nothing new yet).
func (r *Ring) Holds(off int64) bool {
	return off >= r.start && off <= r.end
}

// Read copies bytes from offset off into p and returns how many. It
// returns ok=false when off is older than Start: those bytes are gone.
func (r *Ring) Read(p []byte, off int64) (n int, ok bool) {
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
		n += copy(p[n:], r.buf[(off+int64(n))%size:])
	}
	return n, true
}

// Resize moves the bytes kept into a buffer of size bytes, which must hold
// them; a size of 0 (with nothing kept) releases the buffer.
func (r *Ring) Resize(size int) {
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

// Size is the length of the buffer now.
func (r *Ring) Size() int { return len(r.buf) }

// Forget drops the bytes before from (at most up to End), without
// reallocating: Start becomes from.
func (r *Ring) Forget(from int64) {
	r.start = min(max(from, r.start), r.end)
}
