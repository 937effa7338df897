package core

import "bytes"

// This file holds the safe-point scanner. The pump hands it each read of a
// session's output before committing the bytes to the ring (ring.go): the
// scanner finds the offsets where a replay may begin (safe points) and the
// terminal modes in force at each, and the ring stores them with the bytes.

// scanner finds safe points in a session's output as it is produced. It
// belongs to the session's pump alone, so it runs outside the session's
// lock.
type scanner struct {
	parser  boundary
	maxGap  int64       // the most bytes between safe points: safeGap
	scanned int64       // offset just past the bytes scanned
	lastAdd int64       // offset of the newest safe point, for spacing
	found   []safePoint // scan's result, reused
	// unsynced: the parser's state at the next byte is not known (output
	// taken up in the middle: newScannerMidway); no safe point is found
	// until a byte that ends whatever sequence may be open (syncIndex).
	unsynced bool
}

// safePoint is an offset where a replay may begin, with the terminal modes
// in force there.
type safePoint struct {
	off   int64
	modes modeSet
}

// Safe points are kept at least minSafeGap bytes apart, at line starts; a
// stream without newlines gets one every maxSafeGap bytes anyway, or more
// often for a small ring (safeGap).
const (
	minSafeGap = 1 << 10
	maxSafeGap = 16 << 10
)

// safeGap returns the most bytes between safe points outside sequences for
// a ring of capacity bytes: maxSafeGap, or a quarter of a smaller ring (not
// under minSafeGap). So a ring that has wrapped holds a safe point in its
// first quarter (unless one sequence spans it), and a replay of the rest:
// with points maxSafeGap apart, a ring of 8 KiB often held none, and a new
// client saw a blank screen.
func safeGap(capacity int) int64 {
	return max(minSafeGap, min(maxSafeGap, int64(capacity/4)))
}

// newScanner returns a scanner for a session's output, kept in a ring of
// capacity bytes, from its first byte, on a fresh terminal.
func newScanner(capacity int) scanner {
	return scanner{parser: boundary{modes: defaultModes}, maxGap: safeGap(capacity)}
}

// newScannerAt returns a scanner for a session's output, kept in a ring of
// capacity bytes, from the absolute offset off, which a plugin kept for a
// session taken up again: what came before off is not known, so the
// scanner assumes a fresh terminal, and the first line start after off may
// already be a safe point.
func newScannerAt(off int64, capacity int) scanner {
	t := newScanner(capacity)
	t.scanned, t.lastAdd = off, off-minSafeGap
	return t
}

// newScannerMidway returns a scanner for output taken up at the absolute
// offset off, where the terminal's state is not known: the plugin kept a
// session's output from there, and off may be inside an escape sequence,
// a long OSC or DCS string (an image, say) or a character. Until the first
// byte after which the parser's state is known again (syncIndex), no safe
// point is found: a replay from a point inside a sequence would print the
// rest of it as text. From there on it is as newScannerAt's, assuming the
// modes of a fresh terminal.
func newScannerMidway(off int64, capacity int) scanner {
	t := newScannerAt(off, capacity)
	t.unsynced = true
	return t
}

// syncIndex returns the index of the first byte of p from which the
// parser's state is known whatever it was before, or -1: ESC begins an
// escape sequence, and CAN and SUB end one, in every state; a newline is
// taken to do so too (it ends no sequence, but no program puts one inside
// an escape sequence, and few inside a string), or output without escapes
// (a log) would never have a safe point again.
func syncIndex(p []byte) int {
	return bytes.IndexAny(p, "\x1b\x18\x1a\n")
}

// scan runs the boundary parser over p, the output after what it scanned
// before, and returns the safe points in it (valid until the next scan) and
// the terminal modes in force at p's end.
//
// Plain text in the ground state, most of any output, is skipped with
// IndexByte to the next escape or the next newline that could make a safe
// point; a plain CSI sequence (colours, cursor moves: plainCSI) is taken
// whole; only other escape sequences go byte by byte.
func (t *scanner) scan(p []byte) (points []safePoint, modes modeSet) {
	t.found = t.found[:0]
	base := t.scanned
	t.scanned += int64(len(p))
	i := 0
	if t.unsynced {
		if i = syncIndex(p); i < 0 {
			return nil, t.parser.modes
		}
		t.unsynced = false // the parser, in the ground state, steps p[i]
	}
	// esc is the index of the next escape at or after i, or len(p): found
	// once per escape, not once per line, or output of many short lines
	// and no escape would be searched to its end from every line.
	esc := -1
	for i < len(p) {
		if t.parser.state != stGround {
			c := p[i]
			t.parser.step(c)
			i++
			t.checkSafe(base+int64(i), c)
			continue
		}
		if esc < i {
			esc = len(p)
			if j := bytes.IndexByte(p[i:], 0x1b); j >= 0 {
				esc = i + j
			}
		}
		rest := p[i:]
		stop := esc - i
		// A newline less than minSafeGap past the last safe point cannot
		// make one (checkSafe): the text runs on over it, so that
		// output of many short lines is not stopped at every line.
		from := 0
		if skip := t.lastAdd + minSafeGap - 1 - (base + int64(i)); skip > 0 {
			from = int(min(skip, int64(stop)))
		}
		if from < stop {
			// Not searched at all when the text cannot make one: an
			// empty search costs a call, and that is most escapes'.
			if j := bytes.IndexByte(rest[from:stop], '\n'); j >= 0 {
				stop = from + j
			}
		}
		text := rest[:stop]
		if start := base + int64(i); start+int64(len(text))-t.lastAdd > t.maxGap {
			t.gapPoints(text, start)
		}
		if len(text) > 0 && text[len(text)-1] < 0x80 {
			t.parser.utf8Need = 0 // what skipText finds after ASCII
		} else {
			t.parser.skipText(text)
		}
		i += stop
		if i == len(p) {
			break
		}
		// The escape or newline itself; a whole plain CSI sequence (the
		// SGR colours of most output) at once.
		if n := plainCSI(p[i:]); n > 0 {
			t.parser.utf8Need = 0
			i += n
			t.checkSafe(base+int64(i), p[i-1])
			continue
		}
		c := p[i]
		t.parser.step(c)
		i++
		t.checkSafe(base+int64(i), c)
	}
	return t.found, t.parser.modes
}

// plainCSI returns the length of the CSI sequence at the start of p if it
// is whole and plain: ESC [, parameter bytes that are digits, ':' or ';'
// only (not private, no intermediates, no control inside), and a final
// byte. Stepping over it byte by byte leaves the parser in the ground
// state with no UTF-8 pending and the modes unchanged, and makes no safe
// point inside it. Else 0: step goes byte by byte.
func plainCSI(p []byte) int {
	if len(p) < 3 || p[0] != 0x1b || p[1] != '[' {
		return 0
	}
	for j := 2; j < len(p); j++ {
		switch c := p[j]; {
		case c >= '0' && c <= ';':
		case c >= 0x40 && c <= 0x7e:
			return j + 1
		default:
			return 0
		}
	}
	return 0
}

// checkSafe records off as a safe point if the parser allows it there, c
// being the byte just before it.
func (t *scanner) checkSafe(off int64, c byte) {
	gap := off - t.lastAdd
	if gap < minSafeGap || !t.parser.safe() {
		return
	}
	if c == '\n' || gap >= t.maxGap {
		t.add(off)
	}
}

// gapPoints records safe points every maxGap bytes inside text, a run
// of ground-state bytes without escapes or newlines starting at offset
// start: before any byte that does not continue a UTF-8 sequence, where the
// bytes before it complete their character as the parser sees them (so a
// point does not depend on where the output was split into writes).
func (t *scanner) gapPoints(text []byte, start int64) {
	for {
		q := max(t.lastAdd+t.maxGap-start, 0) // index of the first candidate
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
func (t *scanner) needBefore(text []byte, q int64) int {
	b := boundary{utf8Need: t.parser.utf8Need}
	b.skipText(text[:q])
	return b.utf8Need
}

func (t *scanner) add(off int64) {
	t.found = append(t.found, safePoint{off: off, modes: t.parser.modes})
	t.lastAdd = off
}

// boundary tracks, byte by byte, where in a terminal output stream a replay
// may safely begin: outside every escape sequence, on a UTF-8 character
// boundary, preferably at the start of a line. It also follows the handful
// of DEC private modes (alternate screen, cursor visibility, bracketed paste,
// mouse reporting…) that a replay must restore to render correctly.
//
// It is a deliberately small subset of the VT500 parser state machine: it
// only needs to know whether it is inside a sequence, not what the sequence
// means. It reads a UTF-8 stream, so the 8-bit C1 controls are continuation
// bytes to it, not introducers; and BEL ends every string, not only OSC.
// FuzzSafePoints checks it against an independent oracle.
type boundary struct {
	state    vtState
	utf8Need int   // continuation bytes still expected in ground state
	private  bool  // CSI parameters began with '?'
	param    int   // current numeric CSI parameter
	params   []int // finished CSI parameters of a private sequence
	modes    modeSet
}

type vtState uint8

const (
	stGround vtState = iota
	stEscape         // after ESC
	stEscInt         // ESC intermediate bytes (e.g. ESC ( B)
	stCSI            // after ESC [ (8-bit C1 CSI is a UTF-8 continuation byte here)
	stString         // OSC, DCS, SOS, PM, APC: until BEL, CAN, SUB or ESC
)

// safe reports whether the next byte may start a replay.
func (b *boundary) safe() bool { return b.state == stGround && b.utf8Need == 0 }

// step advances the parser over one byte.
func (b *boundary) step(c byte) {
	switch b.state {
	case stGround:
		switch {
		case b.utf8Need > 0 && c&0xC0 == 0x80:
			b.utf8Need--
		case c == 0x1b:
			b.utf8Need = 0
			b.state = stEscape
		case c < 0x80:
			b.utf8Need = 0
		case c&0xE0 == 0xC0:
			b.utf8Need = 1
		case c&0xF0 == 0xE0:
			b.utf8Need = 2
		case c&0xF8 == 0xF0:
			b.utf8Need = 3
		default: // stray continuation or invalid byte: resynchronise
			b.utf8Need = 0
		}
	case stEscape:
		switch {
		case c == '[':
			b.startCSI()
		case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_':
			b.state = stString
		case c >= 0x20 && c <= 0x2f:
			b.state = stEscInt
		case c == 0x1b:
			// ESC ESC: stay
		case c == 0x18 || c == 0x1a: // CAN, SUB abort the escape
			b.state = stGround
		case c < 0x20 || c == 0x7f:
			// A C0 control inside an escape is executed, DEL is
			// ignored; the escape goes on
		default:
			b.state = stGround
		}
	case stEscInt:
		if c >= 0x30 && c <= 0x7e || c == 0x18 || c == 0x1a {
			b.state = stGround
		} else if c == 0x1b {
			b.state = stEscape
		}
	case stCSI:
		switch {
		case c >= '0' && c <= '9':
			if b.param < 1<<16 {
				b.param = b.param*10 + int(c-'0')
			}
		case c == ';' || c == ':':
			b.pushParam()
		case c == '?':
			b.private = true
		case c >= 0x40 && c <= 0x7e:
			b.pushParam()
			if b.private && (c == 'h' || c == 'l') {
				for _, p := range b.params {
					b.modes.set(p, c == 'h')
				}
			}
			b.state = stGround
		case c == 0x1b:
			b.state = stEscape
		case c == 0x18 || c == 0x1a: // CAN, SUB abort the sequence
			b.state = stGround
		}
	case stString:
		switch c {
		case 0x07, 0x18, 0x1a:
			b.state = stGround
		case 0x1b:
			// ESC ends the string and begins an escape sequence, as it
			// does anywhere: ESC \ (ST) then ends in the ground state.
			b.state = stEscape
		}
	}
}

// skipText advances over text, a run of ground-state bytes with no ESC,
// as step would byte by byte: only the UTF-8 state can change.
func (b *boundary) skipText(text []byte) {
	n := len(text)
	for k := n - 1; k >= 0 && k >= n-4; k-- {
		c := text[k]
		if c&0xC0 == 0x80 {
			continue
		}
		need := 0
		switch {
		case c&0xE0 == 0xC0:
			need = 1
		case c&0xF0 == 0xE0:
			need = 2
		case c&0xF8 == 0xF0:
			need = 3
		}
		b.utf8Need = max(need-(n-1-k), 0)
		if n-1-k > need {
			b.utf8Need = 0
		}
		return
	}
	// Nothing but continuation bytes in the last four (or all of text).
	if n < 4 {
		b.utf8Need = max(b.utf8Need-n, 0)
	} else {
		b.utf8Need = 0
	}
}

func (b *boundary) startCSI() {
	b.state = stCSI
	b.private = false
	b.param = 0
	b.params = b.params[:0]
}

func (b *boundary) pushParam() {
	if len(b.params) < 16 {
		b.params = append(b.params, b.param)
	}
	b.param = 0
}

// modeSet is the set of tracked DEC private modes that are on.
type modeSet uint16

// trackedModes lists the DEC private modes a replay restores, in the order
// it restores them. Cursor visibility (25) is on by default; the others are
// off by default.
var trackedModes = [...]int{
	1,    // application cursor keys
	25,   // cursor visible
	47,   // alternate screen (old)
	1047, // alternate screen
	1049, // alternate screen with saved cursor
	1000, // mouse: button events
	1002, // mouse: drag events
	1003, // mouse: all motion
	1006, // mouse: SGR encoding
	2004, // bracketed paste
}

// defaultModes is the state of a fresh terminal: only the cursor shows.
const defaultModes modeSet = 1 << 1

func modeBit(mode int) (modeSet, bool) {
	for i, m := range trackedModes {
		if m == mode {
			return 1 << i, true
		}
	}
	return 0, false
}

func (s *modeSet) set(mode int, on bool) {
	bit, ok := modeBit(mode)
	if !ok {
		return
	}
	if on {
		*s |= bit
	} else {
		*s &^= bit
	}
}

// preamble returns the escape sequences that take a fresh terminal into
// the modes of s, or nil when s is the default.
func (s modeSet) preamble() []byte {
	if s == defaultModes {
		return nil
	}
	var out []byte
	for i, m := range trackedModes {
		on := s&(1<<i) != 0
		def := defaultModes&(1<<i) != 0
		if on == def {
			continue
		}
		out = append(out, "\x1b[?"...)
		out = appendInt(out, m)
		if on {
			out = append(out, 'h')
		} else {
			out = append(out, 'l')
		}
	}
	return out
}

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}
