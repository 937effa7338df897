package core

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
	"unicode/utf8"
)

// replayOracle says, for every offset i of p (0 <= i <= len(p)), whether a
// replay may begin there: whether a terminal that has read p[:i] is
// outside every escape sequence and not inside a UTF-8 character. It is
// written from the VT500 parser's state diagram (vt100.net/emu/dec_ansi_parser)
// for a terminal that reads UTF-8, independently of boundary:
//
//   - ESC begins an escape sequence wherever it appears, also inside
//     another sequence or a string, which it ends. CAN and SUB end any
//     sequence or string. Other C0 controls inside a sequence are
//     executed and the sequence goes on; DEL inside one is ignored.
//   - ESC [ begins a control sequence, which ends at its final byte
//     (0x40-0x7e). ESC ] (OSC), ESC P (DCS), ESC X (SOS), ESC ^ (PM) and
//     ESC _ (APC) begin a string, which ends at ST (ESC \).
//   - ESC followed by intermediate bytes (0x20-0x2f) ends at the next byte
//     in 0x30-0x7e, as does a plain ESC.
//   - In the ground state, a valid UTF-8 encoding is one character, never
//     to be cut. Invalid bytes are not characters and the oracle asks
//     nothing about them.
//
// Where the scanner's documented model (scan.go) chooses otherwise,
// the oracle follows the model, and says so here:
//
//   - BEL ends every string, not only OSC (xterm ends OSC with BEL; for
//     DCS, SOS, PM and APC the model is more lenient than VT500).
//   - The 8-bit C1 introducers (0x9b CSI, 0x9d OSC, 0x90 DCS, …) are not
//     introducers: output is UTF-8, in which those bytes are continuation
//     bytes.
//   - A non-ASCII byte right after ESC ends the escape (what a character
//     there does differs between terminals); inside a control sequence,
//     after intermediates, or in a string, non-ASCII bytes are ignored.
func replayOracle(p []byte) []bool {
	const (
		ground   = iota
		esc      // after ESC
		escInter // after ESC and intermediate bytes
		csi      // in a control sequence
		str      // in an OSC, DCS, SOS, PM or APC string
	)
	ok := make([]bool, len(p)+1)
	ok[0] = true
	state := ground
	for i := 0; i < len(p); {
		c := p[i]
		if state == ground && c >= 0x80 {
			if r, w := utf8.DecodeRune(p[i:]); r != utf8.RuneError || w > 1 {
				i += w // the offsets inside the character stay false
				ok[i] = true
				continue
			}
		}
		i++
		switch {
		case c == 0x1b:
			state = esc
		case c == 0x18 || c == 0x1a:
			state = ground
		case state == ground:
		case state == esc:
			switch {
			case c == '[':
				state = csi
			case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_':
				state = str
			case c >= 0x20 && c <= 0x2f:
				state = escInter
			case c < 0x20 || c == 0x7f:
			default: // 0x30-0x7e, including '\' of ST; or non-ASCII
				state = ground
			}
		case state == escInter:
			if c >= 0x30 && c <= 0x7e {
				state = ground
			}
		case state == csi:
			if c >= 0x40 && c <= 0x7e {
				state = ground
			}
		case state == str:
			if c == 0x07 {
				state = ground
			}
		}
		ok[i] = state == ground
	}
	return ok
}

// FuzzSafePoints checks the replay safe-point scanner on arbitrary output:
// the boundary parser is never "safe" where the oracle is not; the scanner,
// for the default ring and for the smallest (whose points are closer),
// finds the same safe points however the stream is split into writes, each
// one where the byte-by-byte parser is safe, with the modes it has there;
// and a ring that has wrapped replays from a safe offset.
//
// The stream is data repeated up to reps*256 bytes, so that short inputs
// also reach the gaps (minSafeGap, maxSafeGap) at which the scanner adds
// points; seed chooses where the stream is split.
func FuzzSafePoints(f *testing.F) {
	for _, s := range []string{
		"plain text\r\n",
		"\x1b[1;31mred\x1b[0m\r\n",
		"\x1b[?1049h\x1b[?25l\x1b[?2004hfull screen\r\n\x1b[?1049l",
		"\x1b]0;title\x07$ \r\n",
		"\x1b]8;;http://example.com\x1b\\link\x1b]8;;\x1b\\\r\n",
		"\x1bP+q544e\x1b\\\n",
		"\x1bX sos \x07\x1b^ pm \x1b\\\x1b_ apc \x07\n",
		"\x1b(B\x1b)0\x1b#8\n",
		"日本語 🙂 ünïcödé\n",
		"\xf0\x9f\x99\n\x82\xe6\x97\n\xa5\n",
		"\x80\xbf\xc0\xc1\xf5\xff\xfe\n",
		"\x1b[31\x18\n\x1b]0;x\x1a\n",
		"\x1b[2K\r🙂 progress 42% ████░░ ",
		"\x1b\x1b[m\x1b\n[m\n",
		"\x1b]0;a\x1b[31mb\x07\n",
		// Found by fuzzing: DEL and CAN after ESC, an ESC that ends a
		// string and begins a CSI, which a BEL does not end.
		"\x1b\x7f[\n",
		"\x1b\x18]x\x1b[\x07\n",
		"\x1b]0;a\x1b[\x07\n",
		"\x1b]0;a\x1b\x1b\\\x1b[\x07\n",
		"\x1b\xc3\xa9\n",
		"\x9b31m\x9d0;t\x07\n",
	} {
		f.Add([]byte(s), uint64(1), uint8(130))
	}
	f.Add([]byte("\n"), uint64(7), uint8(255))
	f.Add([]byte("x"), uint64(3), uint8(200)) // no newline: forced points
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, reps uint8) {
		if len(data) == 0 {
			return
		}
		stream := data
		if n := int(reps) * 256; n > len(data) {
			stream = bytes.Repeat(data, n/len(data)+1)[:n]
		}
		oracle := replayOracle(stream)

		// The parser, byte by byte: never safe where the oracle is not.
		var b boundary
		b.modes = defaultModes
		modesAt := make([]modeSet, len(stream)+1)
		safeAt := make([]bool, len(stream)+1)
		modesAt[0], safeAt[0] = b.modes, true
		for i, c := range stream {
			b.step(c)
			modesAt[i+1], safeAt[i+1] = b.modes, b.safe()
			if b.safe() && !oracle[i+1] {
				t.Fatalf("boundary is safe at %d, inside a sequence or character: %q|%q",
					i+1, stream[max(0, i+1-24):i+1], stream[i+1:min(len(stream), i+1+8)])
			}
		}

		// The scanner: the same points whatever the split.
		rng := rand.New(rand.NewPCG(seed, seed>>32|1))
		var cuts []int
		for n := len(stream); n > 0; {
			k := min(n, 1+rng.IntN(1<<uint(rng.IntN(15))))
			cuts = append(cuts, k)
			n -= k
		}
		for _, capacity := range []int{DefaultScrollbackBytes, 4 << 10} {
			checkScanner(t, stream, capacity, cuts, safeAt, oracle, modesAt)
		}

		// A ring that wrapped replays from a safe offset.
		r := newScannedRing(4 << 10)
		off := 0
		for _, k := range cuts {
			r.write(stream[off : off+k])
			off += k
		}
		sp := r.replayPoint()
		switch {
		case sp.off < r.Start() || sp.off > r.End():
			t.Fatalf("ring [%d,%d) replays from %d, outside what it holds", r.Start(), r.End(), sp.off)
		case sp.off == r.End():
			// Nothing to replay, replayPoint's documented choice when the
			// ring kept no safe point: the live output that follows may
			// go on with a sequence begun in what was dropped.
		case !oracle[sp.off]:
			t.Fatalf("ring [%d,%d) replays from %d, inside a sequence or character", r.Start(), r.End(), sp.off)
		}
		if sp.modes != modesAt[sp.off] {
			t.Fatalf("ring replays from %d with modes %b, the parser %b", sp.off, sp.modes, modesAt[sp.off])
		}
	})
}

// checkScanner checks a scanner for a ring of capacity on stream: it finds
// the same safe points however the stream is split into writes (cuts, at
// each point, byte by byte), each one where the byte-by-byte parser is
// safe (safeAt) and the oracle agrees, with the parser's modes there.
func checkScanner(t *testing.T, stream []byte, capacity int, cuts []int, safeAt, oracle []bool, modesAt []modeSet) {
	t.Helper()
	whole := scanChunks(stream, capacity, []int{len(stream)})
	if split := scanChunks(stream, capacity, cuts); !slices.Equal(split, whole) {
		t.Fatalf("ring of %d: split %v: %d safe points, want %d as unsplit; first difference at %d",
			capacity, cuts, len(split), len(whole), firstDifference(split, whole))
	}
	// Splits right at, before and after each point, and at each
	// multiple of the gap, where a point found in the middle of a
	// write falls on the edge of one.
	var edges []int
	for _, sp := range whole {
		edges = append(edges, int(sp.off)-1, int(sp.off), int(sp.off)+1)
	}
	for o := int(safeGap(capacity)); o < len(stream); o += int(safeGap(capacity)) {
		edges = append(edges, o-1, o, o+1)
	}
	if split := scanChunks(stream, capacity, lengthsAt(edges, len(stream))); !slices.Equal(split, whole) {
		t.Fatalf("ring of %d: split at %v: %d safe points, want %d as unsplit; first difference at %d",
			capacity, edges, len(split), len(whole), firstDifference(split, whole))
	}
	if len(stream) <= 8<<10 {
		ones := make([]int, len(stream))
		for i := range ones {
			ones[i] = 1
		}
		if bytewise := scanChunks(stream, capacity, ones); !slices.Equal(bytewise, whole) {
			t.Fatalf("ring of %d: byte by byte: %d safe points, want %d as unsplit; first difference at %d",
				capacity, len(bytewise), len(whole), firstDifference(bytewise, whole))
		}
	}
	var last int64
	for _, sp := range whole {
		if sp.off <= last || sp.off > int64(len(stream)) {
			t.Fatalf("ring of %d: safe point %d after %d, stream of %d", capacity, sp.off, last, len(stream))
		}
		last = sp.off
		if !safeAt[sp.off] || !oracle[sp.off] {
			t.Fatalf("ring of %d: safe point %d is inside a sequence or character: %q|%q",
				capacity, sp.off, stream[max(0, sp.off-24):sp.off], stream[sp.off:min(int64(len(stream)), sp.off+8)])
		}
		if sp.modes != modesAt[sp.off] {
			t.Fatalf("ring of %d: safe point %d has modes %b, the parser %b", capacity, sp.off, sp.modes, modesAt[sp.off])
		}
	}
}

// scanChunks runs a fresh scanner, for a ring of capacity, over stream cut
// into chunks of the given lengths and returns every safe point it found.
func scanChunks(stream []byte, capacity int, lengths []int) []safePoint {
	sc := newScanner(capacity)
	var out []safePoint
	off := 0
	for _, k := range lengths {
		points, _ := sc.scan(stream[off : off+k])
		out = append(out, points...)
		off += k
	}
	return out
}

// firstDifference returns the index of the first safe point where a and b
// differ.
func firstDifference(a, b []safePoint) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// lengthsAt returns the chunk lengths that cut a stream of n bytes at the
// offsets given (in any order; those outside 1..n-1 are ignored).
func lengthsAt(offsets []int, n int) []int {
	offsets = slices.Sorted(slices.Values(offsets))
	var lengths []int
	prev := 0
	for _, o := range offsets {
		if o > prev && o < n {
			lengths = append(lengths, o-prev)
			prev = o
		}
	}
	return append(lengths, n-prev)
}
